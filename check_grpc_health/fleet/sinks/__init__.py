"""The fleet's outputs, one module each: a function from the outcomes to text or a delivery.

Layer: adapter (the fleet). A new output is a new module here, not a branch in the runner.
"""
