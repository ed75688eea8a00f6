package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// command is one subcommand as help, completion and the man page show it:
// all three are made from this table and from the flags the subcommand
// itself prints for -h.
type command struct {
	name    string   // as typed: run, status, tunnel
	args    string   // what follows the name in the synopsis
	summary string   // one line
	verbs   []string // the words allowed as the first argument (status sections, tunnel restart)
	file    bool     // the argument is a file
}

var commands = []command{
	{name: "run", args: "[-c FILE | FILE] [-drained]", summary: "run the daemon in the foreground (default /etc/cgwd/cgwd.yaml)", file: true},
	{name: "check-config", args: "[-c FILE | FILE] [-skip-secrets]", summary: "validate a config file and list every problem", file: true},
	{name: "config", args: "dump [-c FILE | FILE] [-skip-secrets]", summary: "print the effective config, every default filled in, secrets as paths", verbs: []string{"dump"}, file: true},
	{name: "status", args: "[tunnels|ipsec|bgp|paths [NAME]] [-s SOCKET | -c FILE] [-json] [-watch INTERVAL]", summary: "show the running daemon's tunnels, IPsec SAs, BGP sessions and paths", verbs: statusSections},
	{name: "reload", args: "[-dry-run] [-s SOCKET | -c FILE] [-json]", summary: "load the config file again and apply it (-dry-run: only say what would change)"},
	{name: "tunnel", args: "restart NAME [-s SOCKET | -c FILE]", summary: "re-establish one tunnel", verbs: []string{"restart"}},
	{name: "bgp", args: "reset NAME [-s SOCKET | -c FILE]", summary: "soft-reset one BGP session (routes re-sent both ways, the session stays up)", verbs: []string{"reset"}},
	{name: "path", args: "down|up NAME [-s SOCKET | -c FILE]", summary: "take a path out of service (traffic moves off it) or put it back", verbs: []string{"down", "up"}},
	{name: "drain", args: "[-no-wait] [-s SOCKET | -c FILE] [-json]", summary: "steer AWS and the LAN to the other box and wait until this one's paths are quiet"},
	{name: "undrain", args: "[-s SOCKET | -c FILE] [-json]", summary: "put a drained box back in service"},
	{name: "import-aws", args: "FILE [flags]", summary: "turn AWS's VPN configuration (XML, Terraform outputs) into a cgwd config", file: true},
	{name: "cleanup", args: "[-c FILE | FILE]", summary: "remove what a stopped cgwd left in the kernel (fail-closed routes included)", file: true},
	{name: "completion", args: "bash|zsh", summary: "print a shell completion script", verbs: []string{"bash", "zsh"}},
	{name: "man", args: "", summary: "print the man page (roff)"},
	{name: "version", args: "", summary: "print the version"},
}

// usage is what `cgwd help` prints.
var usage = func() string {
	var b strings.Builder
	b.WriteString("usage: cgwd <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-13s %s\n", c.name, c.summary)
	}
	b.WriteString("\n`cgwd <command> -h` shows a command's flags.\n")
	return b.String()
}()

// flagHelp is one flag as the subcommand's -h prints it.
type flagHelp struct {
	name  string // without the dash
	value string // the value's name; "" for a boolean flag
	usage string
}

// helpArgs are the words before -h that show the command's flags: a
// command that takes a verb (tunnel restart) has its flags after the verb.
func (c command) helpArgs() []string {
	if len(c.verbs) > 0 && c.name != "status" && c.name != "completion" {
		return []string{c.name, c.verbs[0]}
	}
	return []string{c.name}
}

// help is what `cgwd NAME [VERB] -h` prints, and its flags parsed from it.
func (c command) help() (text string, flags []flagHelp) {
	var out bytes.Buffer
	if run(append(c.helpArgs(), "-h"), &out, &out) != exitOK {
		return "", nil
	}
	text = out.String()
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "  -"):
			f := strings.Fields(line)
			fh := flagHelp{name: strings.TrimPrefix(f[0], "-")}
			if len(f) > 1 {
				fh.value = f[1]
			}
			flags = append(flags, fh)
		case strings.HasPrefix(line, "    \t") && len(flags) > 0:
			last := &flags[len(flags)-1]
			last.usage = strings.TrimSpace(last.usage + " " + strings.TrimSpace(line))
		}
	}
	return text, flags
}

func cmdCompletion(args []string, stdout, stderr io.Writer) int {
	const use = "usage: cgwd completion bash|zsh\n"
	if len(args) != 1 {
		fmt.Fprint(stderr, use)
		return exitUsage
	}
	switch args[0] {
	case "bash":
		fmt.Fprint(stdout, bashCompletion())
	case "zsh":
		fmt.Fprint(stdout, zshCompletion())
	case "-h", "--help":
		fmt.Fprint(stdout, use)
	default:
		fmt.Fprintf(stderr, "cgwd completion: no completion for %q\n%s", args[0], use)
		return exitUsage
	}
	return exitOK
}

func bashCompletion() string {
	var b strings.Builder
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	b.WriteString("# bash completion for cgwd (made by `cgwd completion bash`)\n_cgwd() {\n")
	b.WriteString("\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} words=\"\" valued=\"\" file=0\n")
	fmt.Fprintf(&b, "\tif ((COMP_CWORD == 1)); then\n\t\tCOMPREPLY=($(compgen -W %q -- \"$cur\"))\n\t\treturn\n\tfi\n", strings.Join(names, " "))
	b.WriteString("\tcase ${COMP_WORDS[1]} in\n")
	for _, c := range commands {
		_, flags := c.help()
		var words, valued []string
		for _, f := range flags {
			words = append(words, "-"+f.name)
			if f.value != "" {
				valued = append(valued, "-"+f.name)
			}
		}
		file := 0
		if c.file {
			file = 1
		}
		fmt.Fprintf(&b, "\t%s) words=%q valued=%q file=%d", c.name, strings.Join(words, " "), strings.Join(valued, " "), file)
		if len(c.verbs) > 0 {
			fmt.Fprintf(&b, "\n\t\t((COMP_CWORD == 2)) && words=%q", strings.Join(c.verbs, " "))
		}
		b.WriteString(" ;;\n")
	}
	b.WriteString("\tesac\n")
	b.WriteString("\tif [[ \" $valued \" == *\" $prev \"* ]]; then\n\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n\t\treturn\n\tfi\n")
	b.WriteString("\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n")
	b.WriteString("\tif ((file)) && [[ $cur != -* ]]; then\n\t\tCOMPREPLY+=($(compgen -f -- \"$cur\"))\n\tfi\n}\n")
	b.WriteString("complete -F _cgwd cgwd\n")
	return b.String()
}

// zshQuote makes s safe inside a single-quoted _arguments or _describe spec.
func zshQuote(s string) string {
	r := strings.NewReplacer("'", "'\\''", "[", "(", "]", ")", ":", "\\:")
	return r.Replace(s)
}

func zshCompletion() string {
	var b strings.Builder
	b.WriteString("#compdef cgwd\n# zsh completion for cgwd (made by `cgwd completion zsh`)\n_cgwd() {\n\tlocal -a cmds\n\tcmds=(\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "\t\t'%s:%s'\n", c.name, zshQuote(c.summary))
	}
	b.WriteString("\t)\n\tif ((CURRENT == 2)); then\n\t\t_describe 'command' cmds\n\t\treturn\n\tfi\n")
	b.WriteString("\tlocal cmd=$words[2]\n\tshift words\n\t((CURRENT--))\n\tcase $cmd in\n")
	for _, c := range commands {
		_, flags := c.help()
		fmt.Fprintf(&b, "\t%s) _arguments -s", c.name)
		for _, f := range flags {
			spec := fmt.Sprintf("-%s[%s]", f.name, zshQuote(f.usage))
			if f.value != "" {
				spec += ":" + strings.ToLower(zshQuote(f.value)) + ":_files"
			}
			fmt.Fprintf(&b, " '%s'", spec)
		}
		switch {
		case len(c.verbs) > 0:
			fmt.Fprintf(&b, " '1:argument:(%s)'", strings.Join(c.verbs, " "))
			if c.file {
				b.WriteString(" '2:file:_files'")
			}
		case c.file:
			b.WriteString(" '1:file:_files'")
		}
		b.WriteString(" ;;\n")
	}
	b.WriteString("\tesac\n}\n_cgwd \"$@\"\n")
	return b.String()
}

func cmdMan(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "--help" {
			fmt.Fprintln(stdout, "usage: cgwd man > cgwd.1")
			return exitOK
		}
		fmt.Fprintf(stderr, "cgwd man: takes no arguments, got %q\n", args)
		return exitUsage
	}
	fmt.Fprint(stdout, manPage())
	return exitOK
}

// roff escapes text for a man page line.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// manPage is cgwd(1): the command table and each command's -h text.
func manPage() string {
	var b strings.Builder
	b.WriteString(".TH CGWD 1 \"\" \"cgwd\" \"User Commands\"\n")
	b.WriteString(".SH NAME\ncgwd \\- customer gateway daemon for AWS Site-to-Site VPN and Direct Connect\n")
	b.WriteString(".SH SYNOPSIS\n")
	for _, c := range commands {
		fmt.Fprintf(&b, ".B cgwd %s\n", roff(c.name))
		if c.args != "" {
			fmt.Fprintf(&b, "%s\n", roff(c.args))
		}
		b.WriteString(".br\n")
	}
	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString("cgwd is the customer end of AWS Site-to-Site VPN (IKEv2 and ESP, or WireGuard for non-AWS peers) " +
		"and Direct Connect: it runs the tunnels, BGP, BFD and health probes, and keeps the kernel's routes on the best usable path. " +
		"The running daemon is reached over its control socket (mode 0600), by the commands that take \\-s or \\-c.\n")
	b.WriteString(".SH COMMANDS\n")
	for _, c := range commands {
		fmt.Fprintf(&b, ".SS \"cgwd %s\"\n%s\n", roff(strings.TrimSpace(c.name+" "+c.args)), roff(c.summary))
		_, flags := c.help()
		for _, f := range flags {
			fmt.Fprintf(&b, ".TP\n.B \\-%s", roff(f.name))
			if f.value != "" {
				fmt.Fprintf(&b, " \\fI%s\\fR", roff(f.value))
			}
			fmt.Fprintf(&b, "\n%s\n", roff(f.usage))
		}
	}
	b.WriteString(".SH EXIT STATUS\n0: success; 1: failure (the daemon refused, or an action or reload failed); 2: bad arguments or an invalid config.\n")
	b.WriteString(".SH FILES\n.TP\n/etc/cgwd/cgwd.yaml\nthe config file\n.TP\n/run/cgwd/cgwd.sock\nthe control socket\n")
	b.WriteString(".SH SEE ALSO\nREADME.md of the cgwd source, section Commands.\n")
	return b.String()
}
