"""EmoNeg-Bench core: emotions, domains, negotiation engine, agents, perception and judging."""

__version__ = "0.1.0"
