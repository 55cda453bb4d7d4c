"""Style-A renderer: ONNX graphs refining the reference warp, with an art-style path (see docs/style_a.md)."""

from engine.render.renderer import StyleARenderer, StyleARenderStage, load_renderer

__all__ = ["StyleARenderer", "StyleARenderStage", "load_renderer"]
