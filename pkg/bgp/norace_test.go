//go:build !race

package bgp

// raceDetector is true in a -race build.
const raceDetector = false
