"""Injected thoughts: does the subject notice a concept vector added to its residual stream?

`injected_thoughts` is the explanation type, `grader` the rule-based grader of its answers.
"""
