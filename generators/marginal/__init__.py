"""The marginal engine (a numpy junction tree with Private-PGM's mirror descent) and the
two mechanisms that run on it, MST and AIM. Only their ``measure``/``select`` steps read
the encoded rows; estimation sees noisy measurements only."""
