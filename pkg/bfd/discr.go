package bfd

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"os"
)

// bootID is where the kernel keeps a random ID made at every boot.
var bootID = "/proc/sys/kernel/random/boot_id"

// StableDiscr is a local discriminator for the session between local and
// peer that stays the same across restarts of cgwd until the host reboots:
// a hash of the kernel's boot ID and the two addresses, so it is as
// unpredictable off the box as a random one (RFC 5880 6.8.1), and unique
// per session in practice. A restarted cgwd's first packets then carry
// the discriminator the peer knows, and a peer that still has the session
// Up takes their Down state at once (RFC 5880 6.8.6) instead of dropping
// them as from an unknown session until its detection time runs out,
// which could end a BGP session re-established in the meantime. It
// returns 0 (a random discriminator) when the boot ID cannot be read.
func StableDiscr(local, peer netip.Addr) uint32 {
	id, err := os.ReadFile(bootID)
	if err != nil || len(id) == 0 {
		return 0
	}
	h := sha256.New()
	h.Write([]byte("cgwd bfd discriminator\x00"))
	h.Write(id)
	h.Write(local.AsSlice())
	h.Write(peer.AsSlice())
	d := binary.BigEndian.Uint32(h.Sum(nil))
	if d == 0 {
		d = 1
	}
	return d
}
