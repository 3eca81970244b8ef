"""The marginal engine (a numpy junction tree with Private-PGM's mirror descent) and the
two mechanisms that run on it, MST and AIM. Only their ``measure``/``select`` steps read
the encoded rows; estimation sees noisy measurements only.

Modules: ``mst``/``aim`` (the generators; ``aim_mechanism``, ``aim_workload``, ``base``),
``data`` (the trusted row encoder and exact counts), ``compress`` (domain compression),
the engine (``jtree``, ``tables``, ``graphical``, ``beliefs``, ``estimation``,
``mst_estimate``) and the released models' samplers (``mst_sampler``, ``jtree_sampler``,
``sampling``).
"""
