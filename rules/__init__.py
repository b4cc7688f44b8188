"""advisor.rules: the rule catalogue (rules read a Report and yield findings; see issue 4)."""
