// Package allocs measures heap allocation for the codecs' budget tests.
package allocs

import "runtime"

// Of is how many bytes the heap handed out while f ran.
func Of(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
