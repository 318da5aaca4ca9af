"""The simulated car's state. Plain data: every change goes through a tool (tools.py) or World.drive."""
from dataclasses import dataclass, field

from qwenkit.apps.car.directions import Step
from qwenkit.apps.car.routing import Route

CLIMATE_ZONES = ("driver", "passenger", "rear")
SEATS = ("driver", "passenger", "rear_left", "rear_right")
WINDOWS = ("driver", "passenger", "rear_left", "rear_right")
MIN_C, MAX_C = 16.0, 28.0
FAN_MAX, SEAT_HEAT_MAX = 5, 3
FULL_RANGE_KM = 420.0
CONTACTS = {"Mom": "+358 40 123 4567", "Anna": "+358 50 234 5678", "Mikko": "+358 44 345 6789",
            "Office": "+358 9 4567 890", "Dr. Virtanen": "+358 9 5678 901"}


@dataclass(slots=True)
class Navigation:
    destination: str
    route: Route
    steps: list[Step]
    progress: int = 0


@dataclass(slots=True)
class Vehicle:
    node: int
    location: str
    battery_pct: float = 80.0
    cabin_c: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CLIMATE_ZONES, 21.0))
    fan: int = 2
    seat_heating: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEATS, 0))
    windows_open: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(WINDOWS, False))
    media: str | None = None
    media_playing: bool = False
    call: str | None = None
    navigation: Navigation | None = None

    @property
    def range_km(self) -> float:
        return self.battery_pct / 100 * FULL_RANGE_KM
