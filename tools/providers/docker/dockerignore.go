package main

// The build context: the files of the context directory that .dockerignore keeps, with Docker's
// semantics by Docker's own code: github.com/moby/patternmatcher reads the file (ignorefile) and
// matches (patterns in order, the last match wins, "!" re-includes, "**" spans directories, a
// pattern matching a parent directory excludes everything below it). As the docker CLI does, the
// Dockerfile and .dockerignore are always sent, and the walk skips an excluded directory unless an
// exclusion pattern names something below it.

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// readDockerignore returns the patterns of dir/.dockerignore (none when there is no such file).
func readDockerignore(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return patterns, nil
}

// contextMatcher compiles the patterns, re-including the build's own files when they are excluded
// (as the docker CLI's TrimBuildFilesFromExcludes does). dockerfileRel is "" when the Dockerfile
// lies outside the context.
func contextMatcher(patterns []string, dockerfileRel string) (*patternmatcher.PatternMatcher, error) {
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf(".dockerignore: %w", err)
	}
	var keep []string
	for _, f := range []string{".dockerignore", dockerfileRel} {
		if f == "" {
			continue
		}
		excluded, err := pm.MatchesOrParentMatches(f)
		if err != nil {
			return nil, fmt.Errorf(".dockerignore: %w", err)
		}
		if excluded {
			keep = append(keep, "!"+f)
		}
	}
	if len(keep) == 0 {
		return pm, nil
	}
	return patternmatcher.New(append(append([]string{}, patterns...), keep...))
}

// canSkipDir: an excluded directory may be skipped unless an exclusion pattern ("!dir/x") could
// re-include something below it (the docker CLI's rule, a prefix test on the pattern).
func canSkipDir(pm *patternmatcher.PatternMatcher, rel string) bool {
	if !pm.Exclusions() {
		return true
	}
	dirSlash := rel + "/"
	for _, p := range pm.Patterns() {
		if p.Exclusion() && strings.HasPrefix(filepath.ToSlash(p.String())+"/", dirSlash) {
			return false
		}
	}
	return true
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
	patterns, err := readDockerignore(dir)
	if err != nil {
		return nil, err
	}
	pm, err := contextMatcher(patterns, dockerfileRel)
	if err != nil {
		return nil, err
	}
	parents := map[string]patternmatcher.MatchInfo{} // match results of the directories walked
	var out []contextFile
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		excluded, info, err := pm.MatchesUsingParentResults(rel, parents[filepath.ToSlash(filepath.Dir(rel))])
		if err != nil {
			return fmt.Errorf(".dockerignore: %w", err)
		}
		if d.IsDir() {
			parents[rel] = info
		}
		if excluded {
			if d.IsDir() && canSkipDir(pm, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		cf := contextFile{rel: rel, abs: path, info: fi}
		if fi.Mode()&fs.ModeSymlink != 0 {
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
