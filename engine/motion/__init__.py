"""Motion stage (Style-E and the baseline): audio + emotion + style -> per-frame MotionSpec coefficients."""
