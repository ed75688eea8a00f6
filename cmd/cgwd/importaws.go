package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/cgwd/cgwd/pkg/awsimport"
	"github.com/cgwd/cgwd/pkg/config"
)

const importUsage = `usage: cgwd import-aws FILE [--format auto|xml|terraform] [--out-dir DIR [--force]]
                       [--prefix CIDR ...] [--local-address IP] [--asn N] [--psk-dir DIR]
                       [--static-route CIDR ...] [--cert-file F] [--key-file F] [--ca-file F]
       cgwd import-aws FILE --diff -c CONFIG

FILE (or - for stdin) is the CustomerGatewayConfiguration XML of an AWS VPN
connection (console: Download configuration, vendor "Generic"; or the JSON of
aws ec2 describe-vpn-connections), or with --format terraform the outputs of an
aws_vpn_connection (terraform output -json). FILE may be gzip-compressed; it
may not be larger than 1 MiB, compressed or not. Tunnels are ordered by AWS outside
address: cgw-t1 is the lower one, which need not be the console's Tunnel 1.

Without --out-dir the config is printed with psk_file references and the
pre-shared keys are not printed at all. With --out-dir, DIR/cgwd.yaml and
DIR/cgw-t1.psk, DIR/cgw-t2.psk (mode 0600) are written; existing files are
kept unless --force. DIR is created if missing, but not its parent.

A static-routing connection (AWS StaticRoutesOnly) gets routing: static and
no bgp; its static_routes are the VPC CIDRs, which AWS's description does not
list: pass --static-route. The connection's routes in AWS (on-prem CIDRs)
become prefixes unless --prefix is given.

AWS CLI JSON that holds Options.TunnelOptions (describe-vpn-connections)
says what AWS accepts now: IKE versions, phase 1 and 2 algorithms and DH
groups, lifetimes, rekey margin and fuzz, replay window, DPD timeout and
startup action; the config then gets the matching ipsec settings.

--diff compares CONFIG with what FILE says instead: each mismatch (PSK or
certificate authentication, lifetime, IKE version, a proposal list AWS
accepts nothing of, DPD timeout, replay window, a startup action nobody
initiates under) is printed with the line that fixes it, and the exit
status is 1 when there is one.

A customer gateway with a private certificate (AWS Private CA) gets no
pre-shared key from AWS: import-aws then writes auth: cert with cert_file,
key_file and ca_file (--cert-file, --key-file, --ca-file, default cgw.pem,
cgw.key and ca.pem in DIR or --psk-dir) and no psk_file; export the
certificate from ACM into them (see the config's comments). IKE versions
map as for a pre-shared key: both IKEv1 and IKEv2 sign with certificates.

IKE versions: AWS's IkeVersions ikev1 and ikev2 (AWS's default) become
ike_version: any (IKEv2 first, then IKEv1), ikev2 alone 2, ikev1 alone 1.
The XML alone lists IKEv1 parameters as an example but not which versions
the tunnels allow: the config keeps cgwd's default (2) and a warning says
to set ike_version: 1 for a tunnel restricted to ikev1.

flags:
`

func cmdImportAWS(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("import-aws", stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, importUsage)
		fs.PrintDefaults()
	}
	format := fs.String("format", awsimport.FormatAuto, "input format: auto, xml (also AWS CLI JSON) or terraform")
	outDir := fs.String("out-dir", "", "write DIR/cgwd.yaml and the PSK files instead of printing the config")
	force := fs.Bool("force", false, "overwrite existing files in --out-dir")
	pskDir := fs.String("psk-dir", awsimport.DefaultPSKDir, "where the printed config expects the PSK files, or a certificate gateway's cgw.pem, cgw.key and ca.pem (without --out-dir)")
	diff := fs.Bool("diff", false, "compare CONFIG (-c) with FILE and print each mismatch with its fix; exit 1 if any")
	cfgPath := fs.String("c", "", "with --diff: the cgwd config to compare")
	var o awsimport.Options
	fs.Func("prefix", "on-prem prefix to advertise, e.g. 10.10.0.0/16 (repeatable)", prefixFlag(&o.Prefixes))
	fs.Func("static-route", "a VPC CIDR of a static-routing connection, e.g. 10.200.0.0/16 (repeatable)", prefixFlag(&o.StaticRoutes))
	fs.Func("cert-file", "a certificate connection's cert_file, absolute (default DIR/cgw.pem, DIR: --out-dir or --psk-dir)", absFlag(&o.CertFile))
	fs.Func("key-file", "a certificate connection's key_file, absolute (default DIR/cgw.key)", absFlag(&o.KeyFile))
	fs.Func("ca-file", "a certificate connection's ca_file, absolute (default DIR/ca.pem)", absFlag(&o.CAFile))
	fs.Func("local-address", "this gateway's outside IPv4 address, when it is not the public address AWS knows (NAT)", func(s string) error {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return fmt.Errorf("%q is not an IPv4 address", s)
		}
		o.LocalAddress = a
		return nil
	})
	fs.Func("asn", "the customer gateway's ASN, asplain or asdot (overrides the file's)", func(s string) error {
		n, err := config.ParseASN(s)
		if err != nil || n == 0 {
			return fmt.Errorf("%q is not an ASN", s)
		}
		o.ASN = uint32(n)
		return nil
	})
	pos, code, ok := parseArgs(fs, args, len(args))
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "cgwd import-aws: want exactly one FILE, got %d (%s)\n", len(pos), strings.Join(pos, " "))
		return exitUsage
	}
	file := pos[0]
	data, err := readInput(file)
	if err != nil {
		fmt.Fprintf(stderr, "cgwd import-aws: %v\n", err)
		return exitUsage
	}
	conn, err := awsimport.Parse(data, *format)
	if err != nil {
		fmt.Fprintf(stderr, "cgwd import-aws: %s: %v\n", file, err)
		return exitUsage
	}
	if *diff {
		return importDiff(conn, *cfgPath, stdout, stderr)
	}
	missing, err := awsimport.Check(conn, o)
	if err != nil {
		fmt.Fprintf(stderr, "cgwd import-aws: %s: %v\n", file, err)
		return exitUsage
	}
	if w := conn.IKEv1Notice(); w != "" {
		fmt.Fprintf(stderr, "cgwd import-aws: warning: %s\n", w)
	}
	fmt.Fprintf(stderr, "cgwd import-aws: tunnels ordered by AWS outside address: cgw-t1 -> %s, cgw-t2 -> %s\n",
		conn.Tunnels[0].AWSOutside, conn.Tunnels[1].AWSOutside)

	if *outDir != "" {
		written, err := awsimport.WriteDir(*outDir, conn, o, *force)
		if err != nil {
			fmt.Fprintf(stderr, "cgwd import-aws: %v\n", err)
			return exitFailure
		}
		for _, p := range written {
			fmt.Fprintf(stdout, "wrote %s\n", p)
		}
		o.PSKDir = *outDir
	} else {
		o.PSKDir = *pskDir
		yml, err := awsimport.Render(conn, o)
		if err != nil {
			fmt.Fprintf(stderr, "cgwd import-aws: %v\n", err)
			return exitUsage
		}
		_, _ = stdout.Write(yml)
		if !conn.Cert() {
			fmt.Fprintf(stderr, "cgwd import-aws: pre-shared keys are not printed; the config expects them in %s and %s (mode 0600): use --out-dir to write them\n",
				awsimport.PSKPath(o.PSKDir, 0), awsimport.PSKPath(o.PSKDir, 1))
		}
	}
	if conn.Cert() {
		dir, _ := filepath.Abs(o.PSKDir)
		cert, key, ca := o.CertPaths(dir)
		fmt.Fprintf(stderr, "cgwd import-aws: AWS gave no pre-shared key: the customer gateway authenticates with a private certificate; "+
			"export it from ACM (aws acm export-certificate) into %s, its key into %s (mode 0600) and the CA certificates into %s, "+
			"as the config's comments say, then run cgwd check-config\n", cert, key, ca)
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "cgwd import-aws: AWS does not know these; cgwd check-config refuses the config until they are set:\n")
		for _, p := range missing {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		fmt.Fprintf(stderr, "  (flags: --prefix CIDR, --asn N, --local-address IP, --static-route CIDR)\n")
	}
	return exitOK
}

// importDiff prints how the config at path differs from conn.
func importDiff(conn *awsimport.Connection, path string, stdout, stderr io.Writer) int {
	if path == "" {
		fmt.Fprintln(stderr, "cgwd import-aws: --diff needs -c CONFIG")
		return exitUsage
	}
	cfg, err := config.LoadSkipSecrets(path)
	if err != nil {
		fmt.Fprintf(stderr, "cgwd import-aws: %v\n", err)
		return exitUsage
	}
	ms := awsimport.Diff(cfg, conn)
	for _, m := range ms {
		fmt.Fprintln(stdout, m)
	}
	if len(ms) > 0 {
		fmt.Fprintf(stderr, "cgwd import-aws: %d mismatch(es) between %s and AWS\n", len(ms), path)
		return exitFailure
	}
	fmt.Fprintf(stderr, "cgwd import-aws: %s matches what AWS says\n", path)
	return exitOK
}

// readInput reads FILE or stdin through awsimport.ReadInput (size limit,
// gzip, empty input); errors name the file.
func readInput(name string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := awsimport.ReadInput(r)
	if err != nil {
		if name == "-" {
			name = "stdin"
		}
		return nil, fmt.Errorf("%s %w", name, err)
	}
	return data, nil
}

// absFlag parses an absolute path flag into *dst.
func absFlag(dst *string) func(string) error {
	return func(s string) error {
		if !filepath.IsAbs(s) {
			return fmt.Errorf("%q is not an absolute path", s)
		}
		*dst = s
		return nil
	}
}

// prefixFlag parses a repeatable IPv4 prefix flag into *dst.
func prefixFlag(dst *[]netip.Prefix) func(string) error {
	return func(s string) error {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return fmt.Errorf("%q is not an IPv4 prefix", s)
		}
		if p != p.Masked() {
			return fmt.Errorf("%s has host bits set (did you mean %s?)", s, p.Masked())
		}
		*dst = append(*dst, p)
		return nil
	}
}
