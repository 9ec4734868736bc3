"""Plots (matplotlib, headless Agg backend), written atomically as PNG files."""
