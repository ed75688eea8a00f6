// Package container holds cgwd's container image recipe; its test builds the
// binary exactly as the Dockerfile does and checks that it is static.
package container

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The Dockerfile must build with build.sh and ship on distroless static or scratch.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got %d FROM lines", len(froms))
	}
	final := froms[len(froms)-1][1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final stage is %s, want distroless static or scratch", final)
	}
	if !regexp.MustCompile(`(?m)^RUN .*sh deploy/container/build\.sh /out/cgwd$`).MatchString(df) {
		t.Error("the Dockerfile does not build with deploy/container/build.sh")
	}
	if !strings.Contains(df, "COPY --from=build /out/cgwd /usr/local/bin/cgwd") {
		t.Error("the Dockerfile does not ship the binary build.sh made")
	}
	if !strings.Contains(df, `ENTRYPOINT ["/usr/local/bin/cgwd"]`) {
		t.Error("no exec-form ENTRYPOINT (distroless has no shell)")
	}
}

// The Containerfile (make image) is one stage on an empty base that ships the
// binary image.sh puts alone in its build context.
func TestContainerfile(t *testing.T) {
	b, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	cf := string(b)
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(cf, -1)
	if len(froms) != 1 || froms[0][1] != "scratch" {
		t.Errorf("FROM lines %v, want exactly FROM scratch (no registry)", froms)
	}
	if regexp.MustCompile(`(?m)^RUN `).MatchString(cf) {
		t.Error("a RUN step needs a shell and a runtime; the image has neither")
	}
	for _, line := range []string{"COPY cgwd /usr/local/bin/cgwd", `ENTRYPOINT ["/usr/local/bin/cgwd"]`, `CMD ["run", "-c", "/etc/cgwd/cgwd.yaml"]`} {
		if !strings.Contains(cf, "\n"+line+"\n") {
			t.Errorf("Containerfile lacks %q", line)
		}
	}
	sh, err := os.ReadFile("image.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sh), `sh "$here/build.sh" "$ctx/cgwd"`) {
		t.Error("image.sh does not build the binary with build.sh into its context")
	}
}

func TestBuildIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cgwd; skipped with -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "cgwd")
	cmd := exec.Command("sh", "build.sh", bin)
	cmd.Env = append(os.Environ(), "VERSION=container-test", "CGO_ENABLED=1") // build.sh must override CGO
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has an ELF interpreter (PT_INTERP): it is dynamically linked")
		}
		if p.Type == elf.PT_DYNAMIC {
			t.Error("the binary has a dynamic section (PT_DYNAMIC)")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("shared libraries %v (err %v)", libs, err)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary is not stripped (-s)")
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "cgwd container-test") {
		t.Fatalf("cgwd version: %v: %q", err, out)
	}
}
