package main

// .dockerignore handling with Docker's semantics (moby/patternmatcher): patterns in order, the
// last match wins, "!" re-includes, "**" spans directories, and a pattern that matches a parent
// directory excludes everything below it. The Dockerfile and .dockerignore are always sent.

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

type ignorePattern struct {
	re        *regexp.Regexp
	exclusion bool
}

type ignoreMatcher struct {
	patterns      []ignorePattern
	hasExclusions bool
}

func parseDockerignore(r io.Reader) (*ignoreMatcher, error) {
	m := &ignoreMatcher{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		excl := false
		if strings.HasPrefix(line, "!") {
			excl = true
			line = strings.TrimSpace(line[1:])
		}
		line = filepath.ToSlash(filepath.Clean(line))
		line = strings.TrimPrefix(line, "/")
		if line == "" || line == "." {
			continue
		}
		re, err := patternRegexp(line)
		if err != nil {
			return nil, fmt.Errorf(".dockerignore pattern %q: %w", line, err)
		}
		m.patterns = append(m.patterns, ignorePattern{re: re, exclusion: excl})
		m.hasExclusions = m.hasExclusions || excl
	}
	return m, sc.Err()
}

func patternRegexp(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '*' && i+1 < len(p) && p[i+1] == '*':
			i++
			if i+1 < len(p) && p[i+1] == '/' { // "**/" : zero or more directories
				i++
				b.WriteString("(.*/)?")
			} else {
				b.WriteString(".*")
			}
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unterminated [")
			}
			cls := p[i+1 : i+j]
			if strings.HasPrefix(cls, "!") {
				cls = "^" + cls[1:]
			}
			b.WriteString("[" + cls + "]")
			i += j
		case c == '\\' && i+1 < len(p):
			i++
			b.WriteString(regexp.QuoteMeta(string(p[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// excluded reports whether the slash-separated relative path is excluded from the context.
func (m *ignoreMatcher) excluded(rel string) bool {
	parents := []string{}
	for d := filepath.ToSlash(filepath.Dir(rel)); d != "." && d != "/"; d = filepath.ToSlash(filepath.Dir(d)) {
		parents = append(parents, d)
	}
	matched := false
	for _, p := range m.patterns {
		hit := p.re.MatchString(rel)
		if !hit {
			for _, d := range parents {
				if p.re.MatchString(d) {
					hit = true
					break
				}
			}
		}
		if hit {
			matched = !p.exclusion
		}
	}
	return matched
}

type contextFile struct {
	rel  string // slash-separated, relative to the context
	abs  string
	info fs.FileInfo
	link string
}

// contextFiles lists the files and directories of the build context that .dockerignore keeps,
// sorted by path. dockerfileRel (relative to the context, or "" when outside) is always kept.
func contextFiles(dir, dockerfileRel string) ([]contextFile, error) {
	m := &ignoreMatcher{}
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		m, err = parseDockerignore(f)
		f.Close()
		if err != nil {
			return nil, err
		}
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	var out []contextFile
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		always := rel == ".dockerignore" || rel == dockerfileRel
		if !always && m.excluded(rel) {
			if d.IsDir() && !m.hasExclusions {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		cf := contextFile{rel: rel, abs: path, info: info}
		if info.Mode()&fs.ModeSymlink != 0 {
			if cf.link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		out = append(out, cf)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out, err
}

// hashContext: sha256 over the kept files' paths, types, permission bits and contents (and over
// the Dockerfile when it lies outside the context).
func hashContext(dir, dockerfile string) (string, error) {
	dfRel := relInside(dir, dockerfile)
	files, err := contextFiles(dir, dfRel)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%o\x00%s\x00", f.rel, f.info.Mode(), f.link)
		if f.info.Mode().IsRegular() {
			if err := hashFile(h, f.abs); err != nil {
				return "", err
			}
		}
		h.Write([]byte{0})
	}
	if dfRel == "" {
		fmt.Fprintf(h, "dockerfile\x00")
		if err := hashFile(h, dockerfile); err != nil {
			return "", err
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// relInside returns path relative to dir (slash-separated) when it is inside dir, else "".
func relInside(dir, path string) string {
	rel, err := filepath.Rel(dir, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return ""
	}
	return filepath.ToSlash(rel)
}

// writeContextTar writes the kept files as the build context tar; a Dockerfile outside the
// context is added as extraName. Owners are root, as the docker CLI sends them.
func writeContextTar(w io.Writer, dir, dockerfile, extraName string) error {
	dfRel := relInside(dir, dockerfile)
	files, err := contextFiles(dir, dfRel)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	add := func(name, abs string, info fs.FileInfo, link string) error {
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = name
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(abs)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(tw, f); err != nil {
				return err
			}
		}
		return nil
	}
	for _, f := range files {
		if err := add(f.rel, f.abs, f.info, f.link); err != nil {
			return err
		}
	}
	if dfRel == "" {
		info, err := os.Stat(dockerfile)
		if err != nil {
			return err
		}
		if err := add(extraName, dockerfile, info, ""); err != nil {
			return err
		}
	}
	return tw.Close()
}
