package awsimport

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ConfigFile is the name of the config WriteDir writes.
const ConfigFile = "cgwd.yaml"

// WriteDir writes dir/cgwd.yaml (rendered with PSKDir = dir) and one PSK file
// per PSK tunnel, mode 0600 (a certificate connection's files come from
// ACM, not from AWS's input: none is written), and returns the paths written. Without force it
// refuses, writing nothing, if any of those files exists. It creates dir
// if missing, but refuses when dir's parent does not exist. Each file is
// written to a temporary file first and then moved into place, so a reader
// never sees half a file.
func WriteDir(dir string, c *Connection, o Options, force bool) ([]string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("out dir %s: %w", dir, err)
	}
	o.PSKDir = abs
	yml, err := Render(c, o)
	if err != nil {
		return nil, err
	}
	type file struct {
		path string
		data []byte
		mode os.FileMode
	}
	files := []file{{filepath.Join(abs, ConfigFile), yml, 0o640}}
	for i := range c.Tunnels {
		if !c.Tunnels[i].Cert { // certificates come from ACM, not from the input
			files = append(files, file{PSKPath(abs, i), []byte(c.Tunnels[i].PSK.Reveal() + "\n"), 0o600})
		}
	}
	if !force {
		var exist []string
		for _, f := range files {
			if _, err := os.Lstat(f.path); err == nil {
				exist = append(exist, f.path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("out dir: %w", err)
			}
		}
		if len(exist) > 0 {
			return nil, fmt.Errorf("%s already exist(s); pass --force to overwrite", strings.Join(exist, ", "))
		}
	}
	// Create DIR itself if need be, but not its parents: a missing parent is
	// more likely a typo than a wish.
	if err := os.Mkdir(abs, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("out dir %s: its parent %s does not exist; create it first", dir, filepath.Dir(abs))
		}
		return nil, fmt.Errorf("out dir: %w", err)
	}
	var written []string
	// PSK files first: the config must never reference a file that is not there.
	for i := len(files) - 1; i >= 0; i-- {
		f := files[i]
		if err := writeFile(f.path, f.data, f.mode, force); err != nil {
			return written, err
		}
		written = append(written, f.path)
	}
	return written, nil
}

// writeFile writes data to a temporary file in path's directory with mode,
// then moves it to path: with os.Link when overwriting is not allowed (which
// fails if path appeared meanwhile), os.Rename otherwise. Errors never
// contain data.
func writeFile(path string, data []byte, mode os.FileMode, force bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if force {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
