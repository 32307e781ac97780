"""Pure renderers: state values in, bytes or messages out. No clock, environment or disk
beyond the packaged templates."""
