package export

import (
	"bytes"
	"container/heap"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// Rank is the sampling rank of a population row: the SHA-256 of the UTF-8
// bytes of seed, a newline and the row's ledger_seq in decimal. A sample of
// N takes the N rows of smallest rank, which anyone can recompute with
// printf '%s\n%s' "$SEED" "$SEQ" | sha256sum.
func Rank(seed string, seq int64) [32]byte {
	return sha256.Sum256([]byte(seed + "\n" + strconv.FormatInt(seq, 10)))
}

// sampled is one sampled population row.
type sampled struct {
	rank [32]byte
	seq  int64
	row  []string
}

// rankHeap is a max-heap on rank: it keeps the n smallest seen.
type rankHeap []sampled

func (h rankHeap) Len() int           { return len(h) }
func (h rankHeap) Less(i, j int) bool { return bytes.Compare(h[i].rank[:], h[j].rank[:]) > 0 }
func (h rankHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *rankHeap) Push(x any)        { *h = append(*h, x.(sampled)) }
func (h *rankHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// selectSample reads population.csv and returns the n rows of smallest
// rank, smallest first. Memory holds n rows.
func selectSample(population io.Reader, seed string, n int) ([]sampled, error) {
	if n <= 0 {
		return nil, nil
	}
	r := csv.NewReader(population)
	if _, err := r.Read(); err != nil {
		return nil, fmt.Errorf("read %s: %w", FilePopulation, err)
	}
	h := &rankHeap{}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", FilePopulation, err)
		}
		seq, err := strconv.ParseInt(rec[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: bad ledger_seq %q", FilePopulation, line, rec[0])
		}
		s := sampled{rank: Rank(seed, seq), seq: seq}
		if h.Len() < n {
			s.row = slices.Clone(rec)
			heap.Push(h, s)
		} else if bytes.Compare(s.rank[:], (*h)[0].rank[:]) < 0 {
			s.row = slices.Clone(rec)
			(*h)[0] = s
			heap.Fix(h, 0)
		}
	}
	out := []sampled(*h)
	slices.SortFunc(out, func(a, b sampled) int { return bytes.Compare(a.rank[:], b.rank[:]) })
	return out, nil
}

// Roles of the entries of an evidence packet.
const (
	roleFinding      = "finding"
	roleTrigger      = "trigger"
	roleEvidence     = "evidence"
	roleSupersededBy = "superseded_by"
)

// packetProofs is samples/<seq>/proofs.json: one inclusion proof per line
// of entries.jsonl, in the same order, in the tree of the bundle's
// checkpoint.
type packetProofs struct {
	TreeSize int64         `json:"tree_size"`
	Entries  []packetProof `json:"entries"`
}

type packetProof struct {
	Seq      int64    `json:"seq"`
	Role     string   `json:"role"`
	LeafHash string   `json:"leaf_hash"`
	Proof    []string `json:"proof"`
}

// packetRoles returns the entries an evidence packet holds, by seq: the
// finding, its triggering change and evidence, and each finding of its
// supersedes chain with their evidence. refs reads a finding's payload
// references; chain is the deriver's superseder map.
func packetRoles(seq int64, refs func(seq int64) (trigger int64, evidence []int64, err error), chain map[int64]int64) (map[int64]string, error) {
	roles := map[int64]string{seq: roleFinding}
	add := func(s int64, role string) {
		if _, ok := roles[s]; !ok && s >= 0 {
			roles[s] = role
		}
	}
	var members []int64
	for cur, ok := chain[seq]; ok; cur, ok = chain[cur] {
		add(cur, roleSupersededBy)
		members = append(members, cur)
	}
	trigger, evidence, err := refs(seq)
	if err != nil {
		return nil, err
	}
	add(trigger, roleTrigger)
	for _, e := range evidence {
		add(e, roleEvidence)
	}
	for _, m := range members {
		trigger, evidence, err := refs(m)
		if err != nil {
			return nil, err
		}
		add(trigger, roleEvidence)
		for _, e := range evidence {
			add(e, roleEvidence)
		}
	}
	return roles, nil
}
