# TEMPORARY LOCAL STUB (not committed): the real planner comes from collector-matching.
from __future__ import annotations


def plan_queries(entities, *, max_length=512, exclude_retweets=True, **kw):
    terms = []
    for e in entities:
        terms += [f'"{n}"' for n in e.names]
    suffix = " -is:retweet" if exclude_retweets else ""
    queries = []
    for t in terms:
        if queries and len(queries[-1]) + 4 + len(t) + len(suffix) + 2 <= max_length:
            queries[-1] += " OR " + t
        else:
            queries.append(t)
    return [f"({q}){suffix}" for q in queries]
