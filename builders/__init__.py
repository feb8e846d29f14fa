"""builders for EmoNeg-Bench (see ../shared/DESIGN.md)."""
