// Command imagebuilder makes an OCI image from a root filesystem directory without a
// container engine, and pushes images to a registry.
//
//	imagebuilder build -rootfs DIR -layout OUT [-base LAYOUT] [-epoch N] [-user 10001:10001] \
//	    [-env K=V]... [-entrypoint JSON] [-cmd JSON] [-workdir /] [-label K=V]...
//	imagebuilder push -layout OUT -ref host:port/repo:tag [-insecure]
//
// build writes one layer: the directory's entries in lexical order with owners and modes
// as they are on disk, every time set to -epoch (SOURCE_DATE_EPOCH), no user or group
// names, hard links kept as links, /dev, /proc and /sys left empty (the runtime mounts
// them). With -base (an OCI layout that build wrote) the layer goes on top of that image's
// layers, which are reused as they are; otherwise it is the only one. The configuration
// comes from the flags alone. The same inputs give the same digest. The image goes into
// an OCI layout directory; its manifest digest and the new layer's compressed size are
// printed.
package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: imagebuilder build|push ...")
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = build(os.Args[2:])
	case "push":
		err = push(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (build or push)", os.Args[1])
	}
	if err != nil {
		log.Fatalf("imagebuilder: %v", err)
	}
}

func build(args []string) error {
	flags := flag.NewFlagSet("build", flag.ExitOnError)
	rootfs := flags.String("rootfs", "", "root filesystem directory")
	out := flags.String("layout", "", "OCI layout directory to write (replaced)")
	baseLayout := flags.String("base", "", "OCI layout whose image the layer goes on top of")
	epoch := flags.Int64("epoch", 0, "time of every file and of the image (SOURCE_DATE_EPOCH)")
	user := flags.String("user", "10001:10001", "user the image runs as")
	workdir := flags.String("workdir", "/", "working directory")
	entrypoint := flags.String("entrypoint", "", "JSON array")
	cmd := flags.String("cmd", "", "JSON array")
	var env, labels list
	flags.Var(&env, "env", "K=V (repeatable)")
	flags.Var(&labels, "label", "K=V (repeatable)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *rootfs == "" || *out == "" {
		return errors.New("build needs -rootfs and -layout")
	}
	when := time.Unix(*epoch, 0).UTC()
	tarPath := *out + ".layer.tar"
	if err := writeTar(*rootfs, tarPath, when); err != nil {
		return err
	}
	defer os.Remove(tarPath)
	layer, err := tarball.LayerFromFile(tarPath, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}
	config := v1.Config{User: *user, WorkingDir: *workdir, Env: env, Labels: map[string]string{}}
	for _, label := range labels {
		k, v, _ := strings.Cut(label, "=")
		config.Labels[k] = v
	}
	if *entrypoint != "" {
		if err := json.Unmarshal([]byte(*entrypoint), &config.Entrypoint); err != nil {
			return fmt.Errorf("-entrypoint: %w", err)
		}
	}
	if *cmd != "" {
		if err := json.Unmarshal([]byte(*cmd), &config.Cmd); err != nil {
			return fmt.Errorf("-cmd: %w", err)
		}
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	if *baseLayout != "" {
		if base, err = onlyImage(*baseLayout); err != nil {
			return fmt.Errorf("-base: %w", err)
		}
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: when}, CreatedBy: "coachops imagebuilder"},
	})
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created, cf.Config = "amd64", "linux", v1.Time{Time: when}, config
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(*out); err != nil {
		return err
	}
	path, err := layout.Write(*out, empty.Index)
	if err != nil {
		return err
	}
	if err := path.AppendImage(img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	size, err := layer.Size()
	if err != nil {
		return err
	}
	fmt.Printf("%s %d\n", digest, size)
	return nil
}

// skipped are directories whose contents the container runtime provides.
var skipped = map[string]bool{"dev": true, "proc": true, "sys": true}

func writeTar(root, path string, when time.Time) error {
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	defer file.Close()
	writer := tar.NewWriter(file)
	links := map[uint64]string{}
	err = filepath.WalkDir(root, func(full string, entry fs.DirEntry, walkErr error) error {
		if walkErr != nil {
			return walkErr
		}
		rel, err := filepath.Rel(root, full)
		if err != nil || rel == "." {
			return err
		}
		info, err := os.Lstat(full)
		if err != nil {
			return err
		}
		parent := strings.SplitN(rel, string(filepath.Separator), 2)
		if len(parent) == 2 && skipped[parent[0]] {
			if info.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(full); err != nil {
				return err
			}
		}
		if info.Mode()&(fs.ModeSocket|fs.ModeNamedPipe|fs.ModeDevice|fs.ModeCharDevice) != 0 {
			return nil
		}
		header, err := tar.FileInfoHeader(info, target)
		if err != nil {
			return err
		}
		header.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			header.Name += "/"
		}
		header.Uname, header.Gname = "", ""
		header.ModTime, header.AccessTime, header.ChangeTime = when, time.Time{}, time.Time{}
		header.Format = tar.FormatPAX
		stat, _ := info.Sys().(*syscall.Stat_t)
		if stat != nil {
			header.Uid, header.Gid = int(stat.Uid), int(stat.Gid)
			if info.Mode().IsRegular() && stat.Nlink > 1 {
				if first, seen := links[stat.Ino]; seen {
					header.Typeflag, header.Linkname, header.Size = tar.TypeLink, first, 0
				} else {
					links[stat.Ino] = header.Name
				}
			}
		}
		if err := writer.WriteHeader(header); err != nil {
			return err
		}
		if header.Typeflag == tar.TypeReg {
			source, err := os.Open(full)
			if err != nil {
				return err
			}
			_, err = io.Copy(writer, source)
			source.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writer.Close()
}

func push(args []string) error {
	flags := flag.NewFlagSet("push", flag.ExitOnError)
	dir := flags.String("layout", "", "OCI layout directory written by build")
	ref := flags.String("ref", "", "host:port/repository:tag")
	insecure := flags.Bool("insecure", false, "plain HTTP (a loopback registry)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	options := []name.Option{}
	if *insecure {
		options = append(options, name.Insecure)
	}
	tag, err := name.ParseReference(*ref, options...)
	if err != nil {
		return err
	}
	img, err := onlyImage(*dir)
	if err != nil {
		return err
	}
	if err := remote.Write(tag, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Println(tag.Context().Digest(digest.String()).String())
	return nil
}

// onlyImage is the one image of an OCI layout that build wrote.
func onlyImage(dir string) (v1.Image, error) {
	path, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	index, err := path.ImageIndex()
	if err != nil {
		return nil, err
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(manifest.Manifests) != 1 {
		return nil, fmt.Errorf("%s holds %d images, want 1", dir, len(manifest.Manifests))
	}
	return index.Image(manifest.Manifests[0].Digest)
}
