"""Benchmarks that print each figure beside its peer's, measured in the same run, as a ratio.

python -m bench            # all
python -m bench queue      # one (queue, http_poll, ...)
"""
