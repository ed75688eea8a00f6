package config

// IPsec holds the settings of an ipsec tunnel.
type IPsec struct {
	// PSKFile holds the pre-shared key (mode 0600).
	PSKFile string `yaml:"psk_file"`
}

func (v *validator) ipsec(field string, c *IPsec) {
	if c.PSKFile == "" {
		v.add(field+".psk_file", "is required")
	}
}
