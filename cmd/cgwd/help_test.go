package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCommandTableIsComplete: every command in the table runs (none is
// unknown to the dispatcher), its -h exits 0, and the README's Commands
// section shows each one.
func TestCommandTableIsComplete(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	section = section[strings.Index(section, "## Commands"):]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	for _, c := range commands {
		args := c.helpArgs()
		code, out, errOut := runCLI(append(args, "-h")...)
		if code != exitOK || strings.Contains(errOut, "unknown command") || out+errOut == "" {
			t.Errorf("cgwd %s -h: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		if !strings.Contains(section, "cgwd "+c.name) {
			t.Errorf("README's Commands section lacks cgwd %s", c.name)
		}
	}
	if _, out, _ := runCLI("help"); !strings.Contains(out, "  tunnel        re-establish one tunnel\n") {
		t.Errorf("help:\n%s", out)
	}
}

// TestManPageHasEveryCommandAndFlag: the man page is made from the table
// and from what each command's -h prints.
func TestManPageHasEveryCommandAndFlag(t *testing.T) {
	code, page, _ := runCLI("man")
	if code != exitOK || !strings.HasPrefix(page, ".TH CGWD 1") {
		t.Fatalf("man: exit %d\n%s", code, page)
	}
	for _, c := range commands {
		if !strings.Contains(page, ".B cgwd "+roff(c.name)+"\n") {
			t.Errorf("man page lacks cgwd %s in its synopsis", c.name)
		}
		_, flags := c.help()
		for _, f := range flags {
			if !strings.Contains(page, ".B \\-"+roff(f.name)) || !strings.Contains(page, roff(f.usage)) {
				t.Errorf("man page lacks cgwd %s's flag -%s (%s)", c.name, f.name, f.usage)
			}
		}
	}
	for _, want := range []string{".B \\-dry\\-run\n", ".B \\-watch \\fIINTERVAL\\fR\n", ".B \\-skip\\-secrets\n"} {
		if !strings.Contains(page, want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	if groff, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = strings.NewReader(page)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff warns about the man page: %v\n%s", err, out)
		}
	}
}

// complete runs the bash completion for the words typed so far (the last
// one being completed) and returns its candidates.
func complete(t *testing.T, script string, words ...string) []string {
	t.Helper()
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, "'"+w+"'")
	}
	prog := script + "\nCOMP_WORDS=(cgwd " + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
		string(rune('0'+len(words))) + "\n_cgwd\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	out, err := exec.Command("bash", "--norc", "-c", prog).CombinedOutput()
	if err != nil {
		t.Fatalf("bash completion %q: %v\n%s", words, err, out)
	}
	return strings.Fields(string(out))
}

func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	_, script, _ := runCLI("completion", "bash")
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"sta"}, "status"},
		{[]string{"re"}, "reload"},
		{[]string{"status", "ip"}, "ipsec"},
		{[]string{"reload", "-d"}, "-dry-run"},
		{[]string{"path", ""}, "down up"},
		{[]string{"config", "d"}, "dump"},
		{[]string{"completion", "z"}, "zsh"},
		{[]string{"import-aws", "-out"}, "-out-dir"},
		{[]string{"status", "bgp", "-w"}, "-watch"},
	} {
		if got := strings.Join(complete(t, script, c.words...), " "); got != c.want {
			t.Errorf("cgwd %s<TAB>: %q, want %q", strings.Join(c.words, " "), got, c.want)
		}
	}
	if code, _, errOut := runCLI("completion", "fish"); code != exitUsage || !strings.Contains(errOut, `no completion for "fish"`) {
		t.Errorf("completion fish: exit %d\n%s", code, errOut)
	}
}

func TestZshCompletionParses(t *testing.T) {
	_, script, _ := runCLI("completion", "zsh")
	if !strings.HasPrefix(script, "#compdef cgwd\n") || !strings.Contains(script, "'-dry-run[only say what applying the file would do]'") ||
		!strings.Contains(script, "'1:argument:(down up)'") {
		t.Errorf("zsh completion:\n%s", script)
	}
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("no zsh to parse the script with")
	}
	if out, err := exec.Command(zsh, "-n", "-c", script).CombinedOutput(); err != nil {
		t.Errorf("zsh -n: %v\n%s", err, out)
	}
}
