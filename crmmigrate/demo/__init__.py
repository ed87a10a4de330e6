"""Deterministic demo data: five fake legacy department systems and the truth behind them."""

from crmmigrate.demo.generator import generate

__all__ = ["generate"]
