"""The trust boundary.

Only code in this package (and the few generator/validator functions registered in
:data:`synthrelease.private.table.TRUSTED_READERS`) may read sensitive rows. Everything
else sees DP outputs or synthetic data only. ``tests/test_boundary.py`` enforces this.
"""
