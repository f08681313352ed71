"""The registry (条例 §7–§13): divisions, grids with their dated history, workers and units (`store`, with
`imports`, `changes` and `notices` mixed in, sharing `common`), county matter lists (`matter_lists`), and the
one reader and writer of officials' spreadsheets (`spreadsheets`). May import `store`.
"""
