"""A route map PNG drawn with matplotlib alone (no tiles): the road network grey, the route blue, start and end
marked and labelled, street names along the route."""
import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from qwenkit.apps.car.directions import absorb_short, legs
from qwenkit.apps.car.map import RoadMap
from qwenkit.apps.car.routing import Route


def plot_route(road_map: RoadMap, route: Route, path: str | Path, start: str = "Start", end: str = "Destination",
               title: str | None = None) -> Path:
    """Write the route map to `path` (PNG) and return it."""
    path = Path(path)
    fig = Figure(figsize=(8, 8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    roads = [(road_map.point(u), road_map.point(v)) for u, v in road_map.graph.edges()]
    ax.add_collection(LineCollection(roads, colors="#b0b0b0", linewidths=0.8, zorder=1))
    xs, ys = zip(*(road_map.point(n) for n in route.nodes))
    ax.plot(xs, ys, color="#1f6fd1", linewidth=3.5, solid_capstyle="round", zorder=2)
    ax.scatter([xs[0]], [ys[0]], s=90, color="#2ca02c", edgecolors="white", zorder=3)
    ax.scatter([xs[-1]], [ys[-1]], s=110, color="#d62728", marker="s", edgecolors="white", zorder=3)
    ax.annotate(start, (xs[0], ys[0]), xytext=(8, -14), textcoords="offset points", fontsize=10, weight="bold")
    ax.annotate(end, (xs[-1], ys[-1]), xytext=(8, 6), textcoords="offset points", fontsize=10, weight="bold")
    longest: dict[str, tuple[float, int]] = {}
    for street, first, stop in absorb_short(road_map, route, legs(route)):
        length = sum(route.lengths[first:stop])
        if street and length > max(60, longest.get(street, (0, 0))[0]):
            longest[street] = (length, route.nodes[(first + stop) // 2])
    for street, (_, node) in longest.items():
        ax.annotate(street, road_map.point(node), fontsize=8, color="#0b3d91", ha="center", zorder=4)
    pad = max(max(xs) - min(xs), (max(ys) - min(ys)) * 2, 0.006) * 0.35
    ax.set_xlim(min(xs) - pad, max(xs) + pad)
    ax.set_ylim(min(ys) - pad / 2, max(ys) + pad / 2)
    ax.set_aspect(1 / math.cos(math.radians(float(road_map.lat.mean()))))
    ax.set_axis_off()
    ax.set_title(title or f"{start} to {end}: {route.distance_m / 1000:.1f} km, {route.duration_s / 60:.0f} min")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
