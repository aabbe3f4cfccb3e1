"""Client assumptions, layer 5: the official SDKs (openai, scale-gp) driven against the target, to see
whether they can consume what it sends."""
