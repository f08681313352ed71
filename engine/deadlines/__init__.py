"""Time limits: the timer index and the sweep that fires due timers exactly once (`timers`), green / yellow /
red standing of dispatched tasks (`standing`), working-day calendar versions (`calendars`). May import
`execution` and `store`; the sweep runs case commands through the service it is given, not by import.
"""
