package plan

import "os/exec"

func execMount(dir string) ([]byte, error) {
	return exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput()
}

func execUmount(dir string) { _ = exec.Command("umount", dir).Run() }
