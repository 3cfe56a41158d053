"""The build engine: one build, from source to tested wheel (pipeline.py runs the steps)."""
