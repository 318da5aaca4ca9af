"""What drivers say: request templates per intent (ids like "navigate.03", so a test split can hold phrasings
out), the slot values they are filled with (spoken form -> argument), and follow-ups that lean on the previous
turn. A template is text with {slots}, or (text, fixed arguments)."""

def window_frames(verb: str, way: str, own_a: str, own_b: str) -> list:
    """Opening and closing share their sentence frames: the verb slot ({open}/{close}) and the direction
    ({down}/{up}) differ, and each has two frames of its own, at fixed places so template ids stay put."""
    v, w, every = "{" + verb + "}", "{" + way + "}", {"which": "all"}
    return [f"{v} {{which}} window", f"can you {v} {{which}} window", f"could you {v} {{which}} window",
            f"please {v} {{which}} window", f"i'd like you to {v} {{which}} window", own_a,
            f"{{which}} window {w} please", f"put {{which}} window {w}", own_b, f"{{which}} window {w}",
            f"roll {{which}} window {w}", f"bring {{which}} window {w}", f"i want {{which}} window {w}",
            (f"all windows {w}", every), (f"put the windows {w}", every), (f"{v} all the windows", every),
            (f"{v} every window", every), (f"{v} all windows", every), (f"can you {v} the windows", every),
            (f"let's {v} all the windows", every)]


INTENTS: dict[str, tuple[str, list]] = {
    "navigate": ("navigate_to", [
        "{nav} {destination}", "can you {nav} {destination}", "please {nav} {destination}",
        "could you {nav} {destination}", "i want you to {nav} {destination}", "{nav} {destination} please",
        "i want to go to {destination}", "let's go to {destination}", "how do i get to {destination}",
        "set the destination to {destination}", "i need to get to {destination}", "{destination}, take me there",
        "directions to {destination}", "i'd like to drive to {destination}", "we're going to {destination}",
        "let's head over to {destination}", "i'm heading to {destination}", "our destination is {destination}",
        "next stop {destination}", "we need to be at {destination}"]),
    "nearby": ("find_nearby", [
        "find a {category} nearby", "is there a {category} near here", "where's the nearest {category}",
        "i need a {category}", "show me {categories} around here", "any {categories} close by",
        "search for {categories} nearby", "i'm looking for a {category}", "closest {category} please",
        "find me a {category}", "are there any {categories} around", "look for a {category}",
        "find the nearest {category}", "where can i find a {category}", "any {category} around here",
        "locate a {category} near me", "search for a {category}", "show me the closest {categories}",
        "what {categories} are near me", "list {categories} nearby", "i could use a {category}",
        "is there a {category} close by", "find {categories} near me", "where is a {category} around here"]),
    "nearby_within": ("find_nearby", [
        "find a {category} {within}", "is there a {category} {within}", "any {categories} {within}",
        "{categories} {within}", "search for {categories} {within}", "show me a {category} {within}",
        "look for {categories} {within}", "{category} {within}", "find {categories} {within}",
        "where's a {category} {within}", "i need a {category} {within}", "are there {categories} {within}"]),
    "temp": ("set_temperature", [
        "set the temperature to {celsius} degrees", "make it {celsius} degrees", "{celsius} degrees please",
        "change the temperature to {celsius}", "i'd like it at {celsius} degrees", "warm it up to {celsius} degrees",
        "cool it down to {celsius} degrees", "set the climate to {celsius}", "temperature {celsius}",
        "put the heat at {celsius} degrees", "can you set it to {celsius} degrees celsius",
        "set it to {celsius}", "adjust the temperature to {celsius} degrees", "i want {celsius} degrees",
        "heat it to {celsius} degrees", "bring the temperature to {celsius}", "climate to {celsius} degrees",
        "make the cabin {celsius} degrees", "change the heat to {celsius} degrees"]),
    "temp_zone": ("set_temperature", [
        "set the {zone} side to {celsius} degrees", "make the {zone} side {celsius} degrees",
        "{celsius} degrees on the {zone} side", "set {zone} temperature to {celsius}",
        "change the {zone} temperature to {celsius} degrees", "the {zone} side should be {celsius} degrees",
        ("set my side to {celsius} degrees", {"zone": "driver"}),
        "{zone} side temperature {celsius} degrees", "set the temperature on the {zone} side to {celsius}",
        "warm the {zone} side to {celsius} degrees", "cool the {zone} side to {celsius} degrees",
        "make it {celsius} on the {zone} side", "{zone} temperature {celsius}",
        "{zone} temperature to {celsius} degrees", "make the {zone} temperature {celsius} degrees",
        "put the {zone} temperature at {celsius}", "set the {zone} climate to {celsius}",
        "{zone} zone to {celsius} degrees", "change {zone} temperature to {celsius}",
        "i'd like the {zone} temperature at {celsius}", "set the {zone} zone to {celsius}",
        ("make it {celsius} degrees {rear}", {"zone": "rear"}),
        ("set the temperature {rear} to {celsius}", {"zone": "rear"}),
        ("{celsius} degrees {rear}", {"zone": "rear"}), ("set it to {celsius} {rear}", {"zone": "rear"}),
        ("change the temperature {rear} to {celsius} degrees", {"zone": "rear"}),
        ("warm it up to {celsius} {rear}", {"zone": "rear"}), ("i'd like {celsius} degrees {rear}", {"zone": "rear"}),
        ("set the rear temperature to {celsius}", {"zone": "rear"}),
        ("set all zones to {celsius} degrees", {"zone": "all"}),
        ("make it {celsius} {everywhere}", {"zone": "all"}), ("set {celsius} degrees {everywhere}", {"zone": "all"}),
        ("i want {celsius} degrees {everywhere}", {"zone": "all"})]),
    "fan": ("set_fan", [
        "set the fan to {fan_level}", "fan speed {fan_level}", "turn the fan to level {fan_level}",
        "put the fan on {fan_level}", "change the blower to {fan_level}", "set fan level {fan_level} please",
        "fan to {fan_level}", "set the blower to level {fan_level}", "adjust the fan to {fan_level}",
        "put the ventilation on {fan_level}", "i want the fan at {fan_level}",
        ("turn off the fan", {"level": 0}), ("fan off", {"level": 0}), ("stop the fan", {"level": 0}),
        ("switch the fan off", {"level": 0}), ("kill the fan", {"level": 0}), ("turn the fan off", {"level": 0}),
        ("max fan", {"level": 5}), ("full blast on the fan", {"level": 5}), ("maximum fan speed", {"level": 5}),
        ("turn the fan {max}", {"level": 5}), ("fan {max}", {"level": 5}), ("put the fan {max}", {"level": 5}),
        ("set the blower {max}", {"level": 5}), ("crank the fan {max}", {"level": 5})]),
    "seat": ("set_seat_heating", [
        "set {seat} seat heating to {heat_level}", "heat {seat} seat to level {heat_level}",
        "{seat} seat heater on {heat_level}", "seat heating {heat_level} for {seat} seat",
        "warm up {seat} seat, level {heat_level}", "put {seat} seat heating on {heat_level}",
        "{seat} seat heater to {heat_level}", "set the seat warmer for {seat} seat to {heat_level}",
        "heat up {seat} seat to {heat_level}", "{seat} seat heating level {heat_level}",
        ("turn on {seat} seat heating", {"level": 2}), ("warm {seat} seat", {"level": 2}),
        ("heat {seat} seat", {"level": 2}), ("{seat} seat heating on", {"level": 2}),
        ("switch on {seat} seat heater", {"level": 2}), ("could you heat {seat} seat", {"level": 2}),
        ("seat heating on for {seat} seat", {"level": 2}), ("put on {seat} seat warmer", {"level": 2}),
        ("turn off {seat} seat heating", {"level": 0}), ("{seat} seat heating off", {"level": 0}),
        ("switch off {seat} seat heater", {"level": 0}), ("{seat} seat heater off", {"level": 0}),
        ("max heat on {seat} seat", {"level": 3}), ("maximum seat heat for {seat} seat", {"level": 3}),
        ("turn {seat} seat heating {max}", {"level": 3}), ("put {seat} seat heater {max}", {"level": 3}),
        ("{seat} seat heating {max}", {"level": 3}), ("crank {seat} seat heating {max}", {"level": 3}),
        ("set {seat} seat heat {max}", {"level": 3})]),
    "open": ("open_window", window_frames("open", "down", "{open} {which} window a bit",
                                          "let some air in through {which} window")),
    "close": ("close_window", window_frames("close", "up", "{close} {which} window now", "{which} window, close it")),
    "play": ("play_media", [
        "{play} {query}", "can you {play} {query}", "could you {play} {query}", "please {play} {query}",
        "i'd like you to {play} {query}", "{play} {query} for me", "i want to hear {query}",
        "let's listen to {query}", "put {query} on", "i'd like to listen to {query}", "listen to {query}",
        "how about some {query}", "some {query} please", "i'm in the mood for {query}"]),
    "call": ("call_contact", [
        "{call} {contact}", "can you {call} {contact}", "please {call} {contact}", "i need to {call} {contact}",
        "could you {call} {contact}", "i want to {call} {contact}", "give {contact} a call",
        "get {contact} on the phone", "make a call to {contact}", "connect me to {contact}",
        "place a call to {contact}", "i'd like to talk to {contact}"]),
    "status": ("vehicle_status", [
        "how much battery do i have", "what's my range", "how's the car doing", "vehicle status",
        "battery level?", "how far can i drive on this charge", "car status please", "check the car for me",
        "what's the state of the car",
        "what's the battery at", "how much charge is left", "show me the vehicle status", "how's my battery",
        "what's the range left", "give me a status report", "is the battery ok", "how much range do i have",
        "battery status", "what's my battery level", "how much charge do i have", "charge level please",
        "how far can i go", "what's the state of charge", "how much juice is left", "range and battery please"]),
}

# Follow-ups: previous tool -> intents whose arguments come from that call (see datagen.follow_up).
FOLLOW_UPS: dict[str, tuple[str, list]] = {
    "route": ("route_info", [
        "how long will it take", "how far is it", "what's my eta", "when will we get there", "how much longer",
        "how many kilometers are left", "are we there yet", "how far to go", "what's the remaining distance",
        "how long until we arrive", "distance left?", "what's the eta", "how long to go", "how much time is left",
        "how far away is it",
        "time to destination?", "how many minutes left"]),
    "cancel": ("cancel_navigation", [
        "cancel the navigation", "stop the route", "never mind, cancel that", "end navigation", "stop navigating",
        "forget the destination", "cancel the trip", "cancel route guidance", "i don't want to go there anymore",
        "stop the navigation", "cancel it", "clear the route", "abort navigation", "turn off navigation"]),
    "go_there": ("navigate_to", [
        "take me there", "navigate to the first one", "let's go there", "drive to the closest one",
        "ok, go to the nearest one", "take me to the first one", "sounds good, navigate there",
        "go to the first one", "navigate there", "let's go to that one", "take me to the closest one", "drive there"]),
    "temp_again": ("set_temperature", [
        "make it {celsius} degrees instead", "actually, {celsius} degrees", "change that to {celsius}",
        "no, make it {celsius}", "{celsius} instead", "set it to {celsius} instead", "hmm, {celsius} degrees",
                                          "change it to {celsius} degrees", "make that {celsius}"]),
    "temp_step": ("set_temperature", [
        ("a bit warmer", {"step": 1}), ("make it warmer", {"step": 1}), ("one degree warmer", {"step": 1}),
        ("two degrees warmer", {"step": 2}), ("a bit cooler", {"step": -1}), ("one degree cooler", {"step": -1}),
        ("turn it down a degree", {"step": -1}), ("two degrees colder please", {"step": -2}),
        ("warmer please", {"step": 1}), ("a little warmer", {"step": 1}), ("a little cooler", {"step": -1}),
        ("one degree up", {"step": 1}), ("one degree down", {"step": -1}), ("two degrees cooler", {"step": -2}),
        ("bump it up a degree", {"step": 1})]),
    "fan_step": ("set_fan", [
        ("turn it up a notch", {"step": 1}), ("a bit stronger", {"step": 1}), ("more air please", {"step": 1}),
        ("turn it down a bit", {"step": -1}), ("a bit less", {"step": -1}), ("lower it", {"step": -1}),
        ("turn it off", {"level": 0}), ("switch it off", {"level": 0}),
        ("a little more", {"step": 1}), ("one notch up", {"step": 1}), ("one notch down", {"step": -1}),
        ("less air please", {"step": -1}), ("kill it", {"level": 0})]),
    "fan_again": ("set_fan", ["make it {fan_level} instead", "actually, level {fan_level}", "no, {fan_level}",
        "change it to {fan_level}",
                                      "level {fan_level} instead"]),
    "seat_again": ("set_seat_heating", [
        ("turn it off again", {"level": 0}), ("that's too hot, turn it off", {"level": 0}),
        "make it {heat_level} instead", "actually, level {heat_level}", "change it to {heat_level}",
        ("switch it off", {"level": 0}), "set it to {heat_level} instead", "no, level {heat_level}"]),
    "pause": ("pause_media", [
        "pause the music", "pause", "stop the music", "pause playback", "hold on, pause it", "mute that",
        "stop playing", "pause it", "stop the audio", "silence please", "pause the podcast", "turn the music off",
        "pause the song", "hold the music", "stop the song", "quiet please", "pause that", "stop it for now",
        "music off", "pause the radio"]),
    "play_again": ("play_media", ["play {query} instead", "no, put on {query}", "switch to {query}",
                                  "actually, play {query}", "change to {query}", "put {query} on instead",
                                      "rather play {query}"]),
    "close_it": ("close_window", ["close it again", "shut it", "ok, close it now", "roll it back up", "close it",
        "put it back up", "shut it again"]),
    "open_it": ("open_window", ["open it again", "roll it back down", "open it a bit", "open it", "put it back down"]),
}
NEXT: dict[str, list[str]] = {
    "navigate_to": ["route", "cancel"], "find_nearby": ["go_there", "nearby"],
    "set_temperature": ["temp_again", "temp_step"], "set_fan": ["fan_step", "fan_again"],
    "set_seat_heating": ["seat_again"], "play_media": ["pause", "pause", "play_again"], "open_window": ["close_it"],
    "close_window": ["open_it"],
}
MULTI = ["temp", "temp_zone", "fan", "seat", "open", "close", "play", "call", "navigate"]

# Wording slots: the same words fill many templates, so every verb a driver might use is seen in training even
# though the test split holds whole sentence frames out. {within} also carries the distance.
LEXICON: dict[str, list[str]] = {
    "open": ["open", "roll down", "lower", "wind down", "crack", "open up", "crack open", "bring down"],
    "close": ["close", "roll up", "shut", "raise", "wind up", "lift", "close up", "bring up", "put up"],
    "up": ["up", "back up", "all the way up", "up again", "up fully"],
    "down": ["down", "all the way down", "down a bit", "halfway down", "down a little"],
    "max": ["all the way up", "to the max", "to maximum", "to full", "on full", "up to the top",
            "as high as it goes", "on high"],
    "rear": ["in the back", "for the back seats", "in the rear", "for the rear seats", "for the rear passengers",
             "in the back seats", "for the people in the back", "at the back"],
    "everywhere": ["everywhere", "in all zones", "for everyone", "in the whole car", "all around",
                   "for all seats"],
    "play": ["play", "put on", "start playing", "queue up", "stream", "play me", "throw on", "play some"],
    "call": ["call", "phone", "ring", "dial", "call up", "ring up", "give a ring to", "get me"],
    "nav": ["navigate to", "take me to", "drive me to", "drive to", "go to", "head to", "get me to",
            "bring me to", "route me to", "guide me to", "navigate me to", "show me the way to", "find a route to",
            "get me directions to", "start navigation to", "set course for", "plot a course to", "head over to",
            "start a route to", "drive over to"],
}
WITHIN = ["within {d} meters", "within {d} m", "no more than {d} m away", "less than {d} meters away",
          "in a {d} meter radius", "at most {d} m away", "under {d} meters away", "closer than {d} m",
          "{d} meters or less away", "not more than {d} meters from here"]

CATEGORY_WORDS = {
    "cafe": [("cafe", "cafes"), ("coffee shop", "coffee shops"), ("coffee place", "coffee places")],
    "restaurant": [("restaurant", "restaurants"), ("place to eat", "places to eat")],
    "parking": [("parking garage", "parking garages"), ("car park", "car parks"), ("parking", "parking spots"),
        ("place to park", "places to park")],
    "charging_station": [("charging station", "charging stations"), ("charger", "chargers"),
                         ("EV charger", "EV chargers")],
    "pharmacy": [("pharmacy", "pharmacies"), ("drugstore", "drugstores"), ("chemist", "chemists")],
    "atm": [("ATM", "ATMs"), ("cash machine", "cash machines")],
    "hotel": [("hotel", "hotels"), ("place to stay", "places to stay")], "museum": [("museum", "museums")],
        "bank": [("bank", "banks")],
    "supermarket": [("supermarket", "supermarkets"), ("grocery store", "grocery stores")],
    "pub": [("pub", "pubs")], "bar": [("bar", "bars")], "library": [("library", "libraries")],
    "fast_food": [("fast food place", "fast food places"), ("burger place", "burger places")],
    "toilets": [("toilet", "toilets"), ("restroom", "restrooms"), ("public toilet", "public toilets")],
        "cinema": [("cinema", "cinemas"), ("movie theater", "movie theaters")],
    "theatre": [("theatre", "theatres")], "taxi": [("taxi stand", "taxi stands")],
}
ZONES = [("driver", "driver"), ("driver's", "driver"), ("passenger", "passenger"), ("passenger's", "passenger")]
SEATS = [("my", "driver"), ("the driver's", "driver"), ("the passenger", "passenger"),
         ("the passenger's", "passenger"), ("the rear left", "rear_left"), ("the back left", "rear_left"),
         ("the rear right", "rear_right"), ("the back right", "rear_right")]
WINDOWS = [*SEATS, ("the driver", "driver")]
CONTACTS = [("Mom", "Mom"), ("Anna", "Anna"), ("Mikko", "Mikko"), ("the office", "office"),
            ("Dr. Virtanen", "Dr. Virtanen"), ("Doctor Virtanen", "Doctor Virtanen")]
MEDIA = ["jazz", "Sibelius", "Nightwish", "The Beatles", "classical music", "Yle Radio Suomi", "Radio Nova",
         "lo-fi beats", "Taylor Swift", "Bohemian Rhapsody", "my driving playlist", "the news", "Darude",
         "Finlandia", "rock music", "relaxing music", "Abba", "a true crime podcast", "Miles Davis", "Coldplay",
         "Radio Helsinki", "some podcasts", "Eppu Normaali", "90s hits", "Ed Sheeran", "piano music"]
CELSIUS = [*range(16, 29), 19.5, 20.5, 21.5, 22.5]
DISTANCES = [200, 300, 400, 500, 800, 1000, 1500, 2000]
UNKNOWN_PLACES = ["Hogwarts", "Narnia", "Gotham City", "Springfield Mall", "Mordor", "Disneyland", "Tatooine",
                  "Wonderland", "Emerald City", "Bikini Bottom"]
UNKNOWN_CONTACTS = ["Pekka", "Grandpa Joe", "Liisa", "Uncle Matti"]
TOO_HOT = [10, 12, 14, 30, 32, 35]

PREFIXES = ["hey, ", "ok, ", "hi, ", "um, ", "car, ", "hey car, ", "so, "]
SUFFIXES = [" please", ", please", " thanks", ", thank you", " now", " for me"]
QUESTION_WORDS = ("how", "what", "when", "where", "is ", "are ", "any ", "can ", "battery level")
JOINERS = [" and ", ", and ", " and also ", ", then ", ". Also ", " and then "]


# -- what the assistant says back: one short sentence per tool result, with the figures it returned ----------
def figure(x) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def minutes(n) -> str:
    return f"{figure(n)} minute" + ("" if n == 1 else "s")


def side(name: str) -> str:
    return name.replace("_", " ").capitalize()


def say(name: str, r: dict) -> str:
    if "error" in r:
        return f"Sorry, {r['error']}."
    if name == "navigate_to":
        return f"Navigating to {r['destination']}, {r['distance_km']} km, about {minutes(r['eta_min'])}."
    if name == "find_nearby":
        kind = CATEGORY_WORDS.get(r["category"], [(r["category"].replace("_", " "),)])[0][0]
        if not r["results"]:
            return f"There is no {kind} {r.get('note', 'none nearby').removeprefix('none ')}."
        first = r["results"][0]
        return f"The nearest {kind} is {first['name']}, {first['distance_m']} m away."
    if name == "route_info":
        return f"{r['remaining_km']} km to {r['destination']}, about {minutes(r['eta_min'])}."
    if name == "cancel_navigation":
        return f"Navigation to {r['cancelled']} cancelled."
    if name == "set_temperature":
        zone = "Temperature" if r["zone"] == "all" else f"{side(r['zone'])} temperature"
        return f"{zone} set to {figure(r['celsius'])} degrees."
    if name == "set_fan":
        return "Fan off." if r["fan"] == 0 else f"Fan set to {r['fan']}."
    if name == "set_seat_heating":
        seat = side(r["seat"])
        return f"{seat} seat heating off." if r["level"] == 0 else f"{seat} seat heating set to {r['level']}."
    if name in ("open_window", "close_window"):
        which = r["window"]
        noun = "windows" if which in ("all", "rear") else "window"
        return f"{side(which)} {noun} {r['state']}."
    if name == "play_media":
        return f"Playing {r['playing']}."
    if name == "pause_media":
        return f"Paused {r['paused']}."
    if name == "call_contact":
        return f"Calling {r['calling']}."
    if name == "vehicle_status":
        return f"Battery at {r['battery_pct']} percent, {r['range_km']} km of range."
    return "Done."


def spoken_answer(calls: list[dict], results: list[dict]) -> str:
    return " ".join(say(c["name"], r) for c, r in zip(calls, results))
