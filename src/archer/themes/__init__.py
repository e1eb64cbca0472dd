"""Theme campaigns for festivals: hot words → target group, products, stock risk, send windows."""

from archer.themes.planner import plan

__all__ = ["plan"]
