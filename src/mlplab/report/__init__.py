"""What people look at: plots (matplotlib, Agg) and text reports."""
