package awsimport

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"regexp"
)

// ErrEmpty is returned by ReadInput for an input with no bytes, or only white space.
var ErrEmpty = errors.New("is empty")

// sizeLimit names MaxInputSize the way errors print it.
var sizeLimit = fmt.Sprintf("1 MiB (%d bytes)", MaxInputSize)

// ReadInput reads an import file from r. It refuses input larger than
// MaxInputSize and empty input (ErrEmpty), and transparently decompresses
// gzip (magic 1f 8b), refusing compressed input that expands to more than
// MaxInputSize, so a small decompression bomb cannot use much memory.
// Errors never contain the input.
func ReadInput(r io.Reader) ([]byte, error) {
	data, err := readLimited(r)
	if err != nil {
		return nil, err
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		zr.Multistream(false)
		data, err = readLimited(zr)
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("decompresses to more than %s, the most accepted; an AWS VPN configuration is a few KiB", sizeLimit)
		}
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ErrEmpty
	}
	return data, nil
}

var errTooLarge = fmt.Errorf("is larger than %s, the most accepted; an AWS VPN configuration is a few KiB", sizeLimit)

// readLimited reads all of r, or fails with errTooLarge after MaxInputSize bytes.
func readLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInputSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxInputSize {
		return nil, errTooLarge
	}
	return data, nil
}

// tfTextLine matches a line of plain `terraform output`: name = value.
var tfTextLine = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]* = (".*"|<sensitive>|[0-9].*|\[|\{|tolist\(|tomap\(|true|false|null)`)

// isTerraformText reports whether data looks like the text form of
// `terraform output` rather than its JSON form.
func isTerraformText(data []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		return tfTextLine.Match(line)
	}
	return false
}
