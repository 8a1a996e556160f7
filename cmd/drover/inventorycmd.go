package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/drover-sh/drover/inventory"
	"github.com/drover-sh/drover/transport"
	"github.com/urfave/cli/v2"
)

func inventoryListAction(c *cli.Context, e *env) error {
	o, err := readOptions(c, e)
	if err != nil {
		return err
	}
	if c.Args().Present() {
		return badInput(o.cmd, "inventory list takes no arguments, got %q", c.Args().Slice())
	}
	inv, err := loadInventory(c.Context, o)
	if err != nil {
		return err
	}
	if o.json {
		err = writeJSON(e.stdout, inv.AnsibleList())
	} else {
		err = renderInventoryList(e.stdout, inv)
	}
	if err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

func inventoryShowAction(c *cli.Context, e *env) error {
	o, err := readOptions(c, e)
	if err != nil {
		return err
	}
	args := c.Args().Slice()
	if len(args) != 1 {
		return badInput(o.cmd, "inventory show takes exactly one HOST, got %d arguments", len(args))
	}
	inv, err := loadInventory(c.Context, o)
	if err != nil {
		return err
	}
	h, ok := inv.Lookup(args[0])
	if !ok {
		return badInput(o.cmd, "host %q is not in inventory %s", args[0], o.inventory)
	}
	cfg, err := loadSSHConfig(o)
	if err != nil {
		return err
	}
	ep, err := resolveHost(cfg, h, o)
	if err != nil {
		return err
	}
	v := newHostView(h, ep)
	if o.json {
		err = writeJSON(e.stdout, v)
	} else {
		err = renderHostShow(e.stdout, v)
	}
	if err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

// hostView is `inventory show`'s document: the inventory host and, under
// "connection", the resolved endpoint with transport's own JSON names.
type hostView struct {
	Name       string              `json:"name"`
	Groups     []string            `json:"groups"`
	Vars       map[string]any      `json:"vars"`
	Connection *transport.Endpoint `json:"connection"`
}

func newHostView(h *inventory.Host, ep *transport.Endpoint) hostView {
	v := hostView{Name: h.Name, Groups: h.Groups, Vars: h.Vars, Connection: ep}
	if v.Groups == nil {
		v.Groups = []string{}
	}
	if v.Vars == nil {
		v.Vars = map[string]any{}
	}
	return v
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dashList(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, ", ")
}

// renderInventoryList prints one row per host in inventory order.
func renderInventoryList(w io.Writer, inv *inventory.Inventory) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// No colour here: escape codes would throw off tabwriter's column widths.
	fmt.Fprintln(tw, "NAME\tADDRESS\tPORT\tUSER\tGROUPS")
	for _, h := range inv.Hosts {
		port := "-"
		if h.Port != 0 {
			port = strconv.Itoa(h.Port)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Name, dash(h.Address), port, dash(h.User), dashList(h.Groups))
	}
	return tw.Flush()
}

// renderHostShow prints the host and its resolved connection as aligned key: value lines.
func renderHostShow(w io.Writer, v hostView) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", v.Name)
	fmt.Fprintf(tw, "groups:\t%s\n", dashList(v.Groups))
	if len(v.Vars) == 0 {
		fmt.Fprintf(tw, "vars:\t-\n")
	} else {
		fmt.Fprintln(tw, "vars:")
		for _, k := range sortedKeys(v.Vars) {
			val, err := json.Marshal(v.Vars[k])
			if err != nil {
				return fmt.Errorf("var %s: %w", k, err)
			}
			fmt.Fprintf(tw, "  %s:\t%s\n", k, val)
		}
	}
	ep := v.Connection
	fmt.Fprintln(tw, "connection:")
	fmt.Fprintf(tw, "  hostname:\t%s\n", ep.HostName)
	fmt.Fprintf(tw, "  port:\t%d\n", ep.Port)
	fmt.Fprintf(tw, "  user:\t%s\n", dash(ep.User))
	fmt.Fprintf(tw, "  identity files:\t%s\n", dashList(ep.IdentityFiles))
	if len(ep.CertificateFiles) > 0 {
		fmt.Fprintf(tw, "  certificate files:\t%s\n", dashList(ep.CertificateFiles))
	}
	fmt.Fprintf(tw, "  identities only:\t%t\n", ep.IdentitiesOnly)
	if ep.IdentityAgent != "" {
		fmt.Fprintf(tw, "  identity agent:\t%s\n", ep.IdentityAgent)
	}
	fmt.Fprintf(tw, "  proxy jump:\t%s\n", dashList(ep.ProxyJump))
	fmt.Fprintf(tw, "  known-hosts files:\t%s\n", dashList(ep.UserKnownHostsFiles))
	fmt.Fprintf(tw, "  global known-hosts files:\t%s\n", dashList(ep.GlobalKnownHostsFiles))
	fmt.Fprintf(tw, "  strict host key checking:\t%s\n", ep.StrictHostKeyChecking)
	fmt.Fprintf(tw, "  connect timeout:\t%s\n", ep.ConnectTimeout)
	return tw.Flush()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
