"""Forms of the rollout app, one module per concept: one small form per action."""
