package main

import (
	"fmt"
	"io"
)

// cmdConfig runs `cgwd config dump`: the effective config, every default
// filled in, secrets as the paths of their files.
func cmdConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "dump" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, configUsage)
			return exitOK
		}
		fmt.Fprint(stderr, configUsage)
		return exitUsage
	}
	fs := newFlagSet("config dump", stderr)
	skipSecrets := fs.Bool("skip-secrets", false, "do not check that secret files exist and are private")
	path, code, ok := parseConfigArgs(fs, args[1:])
	if !ok {
		return code
	}
	cfg, code, ok := loadConfig(path, *skipSecrets, stderr)
	if !ok {
		return code
	}
	if err := cfg.Dump(stdout); err != nil {
		fmt.Fprintf(stderr, "cgwd: %v\n", err)
		return exitFailure
	}
	return exitOK
}

const configUsage = `usage: cgwd config dump [-skip-secrets] [-c FILE | FILE]

dump prints the effective config: every default filled in (those that
depend on position too: prepends, WireGuard ports, probes, the router ID),
secrets as the paths of their files, never their contents.
`
