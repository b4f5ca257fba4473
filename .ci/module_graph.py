#!/usr/bin/env python3
"""The module graph of src/: which top-level module imports which, and any
import circles between them. `python3 .ci/module_graph.py` prints the graph;
`--check` exits 1 when a circle exists (CI runs it). Lower layers must never
reach up: a circle means two modules can only be read together.

An edge is any `crate::module` path outside comments and `#[cfg(test)]`
code, including the names inside `use crate::{a::X, b::Y}` groups."""
import collections
import os
import re
import sys


def top_names(group):
    """The first path segment of each item in a `use crate::{...}` group."""
    depth, cur, names = 0, '', []
    for ch in group:
        if ch == '{':
            depth += 1
        elif ch == '}':
            depth -= 1
        if depth == 0 and ch == ',':
            names.append(cur)
            cur = ''
        else:
            cur += ch
    names.append(cur)
    return {n.strip().split('::')[0].strip('{ \n') for n in names if n.strip()}


def graph(src='src'):
    edges = collections.defaultdict(set)
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith('.rs'):
                continue
            path = os.path.join(root, f)
            top = os.path.relpath(path, src).split(os.sep)[0].removesuffix('.rs')
            if top in ('main', 'lib'):
                continue
            text = open(path).read().split('#[cfg(test)]')[0]
            # doc links and comments name modules without depending on them
            text = '\n'.join(line.split('//')[0] for line in text.splitlines())
            used = set(re.findall(r'crate::(\w+)', text))
            for group in re.findall(r'use crate::\{([^;]*)\};', text, re.S):
                used |= top_names(group)
            edges[top] |= used - {top}
    return edges


def cycles(edges):
    found = []
    for a in sorted(edges):
        for b in sorted(edges[a]):
            seen, stack = set(), [b]
            while stack:
                n = stack.pop()
                if n == a:
                    found.append((a, b))
                    break
                if n not in seen:
                    seen.add(n)
                    stack.extend(edges.get(n, ()))
    return found


if __name__ == '__main__':
    edges = graph()
    for k in sorted(edges):
        print(k, '->', ', '.join(sorted(edges[k])))
    found = cycles(edges)
    print('cycles:', found if found else 'none')
    if '--check' in sys.argv and found:
        sys.exit(1)
