"""Methods a fold trains and evaluates: FDP and the compared methods (docs/methods.md)."""
