package dedupe

import "slices"

// Snapshot returns the ids the store holds, sorted, without sweeping: what
// is there is what the sweeps and evictions left.
func (m *Memory) Snapshot() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.entries))
	for id := range m.entries {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
