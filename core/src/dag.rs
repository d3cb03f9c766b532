//! The wave graph: dependency cycles and the layers of waves that can run together.

/// Every elementary cycle found by a depth-first walk, each as the list of nodes in
/// dependency order (`[a, b]` means a depends on b, which depends on a), rotated to
/// start at its smallest node. `depends_on[i]` lists the nodes node `i` depends on.
pub fn find_cycles(depends_on: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let n = depends_on.len();
    let mut marks = vec![Mark::New; n];
    let mut cycles: Vec<Vec<usize>> = Vec::new();
    for start in 0..n {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, index of the next edge to follow).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::OnStack;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let Some(&dep) = depends_on[node].get(*next) else {
                marks[node] = Mark::Done;
                stack.pop();
                continue;
            };
            *next += 1;
            if dep >= n {
                continue;
            }
            match marks[dep] {
                Mark::New => {
                    marks[dep] = Mark::OnStack;
                    stack.push((dep, 0));
                }
                Mark::OnStack => {
                    let from = stack.iter().position(|&(v, _)| v == dep).unwrap_or(0);
                    let mut cycle: Vec<usize> = stack[from..].iter().map(|&(v, _)| v).collect();
                    let min_at = cycle
                        .iter()
                        .enumerate()
                        .min_by_key(|&(_, v)| *v)
                        .map_or(0, |(i, _)| i);
                    cycle.rotate_left(min_at);
                    if !cycles.contains(&cycle) {
                        cycles.push(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
    }
    cycles
}

/// Groups the nodes into layers: a node's layer is one more than the deepest layer it
/// depends on, so the nodes of one layer depend only on earlier layers and can run in
/// parallel. Within a layer, nodes keep their input order. `None` if there is a cycle.
pub fn layers(depends_on: &[Vec<usize>]) -> Option<Vec<Vec<usize>>> {
    let n = depends_on.len();
    let mut depth: Vec<Option<usize>> = vec![None; n];
    let mut remaining = n;
    // At most n rounds; each round settles at least one node unless there is a cycle.
    while remaining > 0 {
        let mut settled_any = false;
        for node in 0..n {
            if depth[node].is_some() {
                continue;
            }
            let mut deepest = Some(0usize);
            for &dep in &depends_on[node] {
                deepest = match (deepest, depth.get(dep).copied().flatten()) {
                    (Some(d), Some(dep_depth)) => Some(d.max(dep_depth + 1)),
                    _ => None,
                };
            }
            if let Some(d) = deepest {
                depth[node] = Some(d);
                remaining -= 1;
                settled_any = true;
            }
        }
        if !settled_any {
            return None;
        }
    }
    let mut result: Vec<Vec<usize>> = Vec::new();
    for (node, d) in depth.iter().enumerate() {
        let d = (*d)?;
        if result.len() <= d {
            result.resize_with(d + 1, Vec::new);
        }
        result[d].push(node);
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_of_a_diamond() {
        // 0: db; 1: cache; 2: app (db, cache); 3: web (app)
        let deps = vec![vec![], vec![], vec![0, 1], vec![2]];
        assert_eq!(layers(&deps), Some(vec![vec![0, 1], vec![2], vec![3]]));
        assert!(find_cycles(&deps).is_empty());
    }

    #[test]
    fn layers_follow_the_longest_path() {
        // 2 depends on 0 and on 1, 1 depends on 0: 2 must wait for 1.
        let deps = vec![vec![], vec![0], vec![0, 1]];
        assert_eq!(layers(&deps), Some(vec![vec![0], vec![1], vec![2]]));
    }

    #[test]
    fn cycles_are_named_once_each() {
        // 0 → 1 → 2 → 0, and 3 depends on itself; 4 depends on the cycle but is not in it.
        let deps = vec![vec![1], vec![2], vec![0], vec![3], vec![0]];
        assert_eq!(find_cycles(&deps), vec![vec![0, 1, 2], vec![3]]);
        assert_eq!(layers(&deps), None);
    }
}
