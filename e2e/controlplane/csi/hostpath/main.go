// Command hostpath-csi is the CSI driver of the local e2e provider: a
// controller plugin that backs each volume with a directory under --state-dir.
//
// It stands in for csi-driver-host-path's hostpathplugin, which the Go module
// proxy does not serve, and keeps its flags: --endpoint, --drivername,
// --nodeid, --state-dir, --maxvolumesize. It serves the CSI Identity and
// Controller services that external-provisioner and external-resizer call:
// CreateVolume, DeleteVolume, ControllerExpandVolume and
// ValidateVolumeCapabilities. It has no Node service, since the local provider
// runs no kubelet (which is also why node expansion is never required), and no
// topology, since kwok nodes have no CSINode. State survives a restart: a volume
// is its directory plus one JSON record per volume in the state directory.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/api/resource"
)

const version = "0.1.0"

type volume struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Capacity   int64             `json:"capacityBytes"`
	Parameters map[string]string `json:"parameters,omitempty"`
}

type driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer

	name     string
	nodeID   string
	stateDir string
	max      int64

	mu      sync.Mutex
	volumes map[string]*volume // by name, the idempotency key of CreateVolume
}

func main() {
	endpoint := flag.String("endpoint", "unix:///csi/csi.sock", "CSI endpoint (unix://PATH)")
	name := flag.String("drivername", "hostpath.csi.k8s.io", "name of the driver")
	nodeID := flag.String("nodeid", "", "node ID, reported in the volume context")
	stateDir := flag.String("state-dir", "/csi-data-dir", "directory holding the volumes and their records")
	maxSize := flag.String("maxvolumesize", "1Ti", "largest volume CreateVolume and ControllerExpandVolume allow")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, *endpoint, *name, *nodeID, *stateDir, *maxSize); err != nil {
		log.Error("hostpath-csi stopped", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, endpoint, name, nodeID, stateDir, maxSize string) error {
	max, err := resource.ParseQuantity(maxSize)
	if err != nil {
		return fmt.Errorf("--maxvolumesize: %w", err)
	}
	if nodeID == "" {
		return errors.New("--nodeid is required")
	}
	d := &driver{name: name, nodeID: nodeID, stateDir: stateDir, max: max.Value(), volumes: map[string]*volume{}}
	if err := d.load(); err != nil {
		return err
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "unix" || u.Path == "" {
		return fmt.Errorf("--endpoint %q: want unix:///path/to/socket", endpoint)
	}
	if err := os.Remove(u.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	lis, err := net.Listen("unix", u.Path)
	if err != nil {
		return err
	}
	defer os.Remove(u.Path)

	srv := grpc.NewServer(grpc.UnaryInterceptor(logCalls(log)))
	csi.RegisterIdentityServer(srv, d)
	csi.RegisterControllerServer(srv, d)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		srv.GracefulStop()
	}()
	log.Info("serving", "endpoint", endpoint, "driver", name, "node", nodeID, "stateDir", stateDir, "volumes", len(d.volumes))
	return srv.Serve(lis)
}

// logCalls logs every call with its outcome, which is what a test reads when a
// claim does not bind.
func logCalls(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			log.Info("call", "method", info.FullMethod, "code", status.Code(err).String(), "error", status.Convert(err).Message())
		} else if !strings.HasSuffix(info.FullMethod, "/Probe") {
			log.Info("call", "method", info.FullMethod, "code", "OK")
		}
		return resp, err
	}
}

// load reads the volume records left by an earlier run.
func (d *driver) load() error {
	if err := os.MkdirAll(d.stateDir, 0o755); err != nil {
		return err
	}
	records, err := filepath.Glob(filepath.Join(d.stateDir, "*.json"))
	if err != nil {
		return err
	}
	for _, r := range records {
		data, err := os.ReadFile(r)
		if err != nil {
			return err
		}
		var v volume
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
		d.volumes[v.Name] = &v
	}
	return nil
}

func (d *driver) save(v *volume) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := d.record(v.ID) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, d.record(v.ID))
}

func (d *driver) record(id string) string { return filepath.Join(d.stateDir, id+".json") }
func (d *driver) dir(id string) string    { return filepath.Join(d.stateDir, id) }

func (d *driver) byID(id string) *volume {
	for _, v := range d.volumes {
		if v.ID == id {
			return v
		}
	}
	return nil
}

func (d *driver) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: d.name, VendorVersion: version}, nil
}

func (d *driver) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{Capabilities: []*csi.PluginCapability{
		{Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{Type: csi.PluginCapability_Service_CONTROLLER_SERVICE}}},
		{Type: &csi.PluginCapability_VolumeExpansion_{VolumeExpansion: &csi.PluginCapability_VolumeExpansion{Type: csi.PluginCapability_VolumeExpansion_ONLINE}}},
	}}, nil
}

func (d *driver) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{}, nil
}

func (d *driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	var caps []*csi.ControllerServiceCapability
	for _, c := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
	} {
		caps = append(caps, &csi.ControllerServiceCapability{
			Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: c}},
		})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

// checkCapabilities accepts filesystem volumes in any access mode: a directory
// can be shared. Raw block needs a device, which a directory is not.
func checkCapabilities(caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return status.Error(codes.InvalidArgument, "volume capabilities are required")
	}
	for _, c := range caps {
		if c.GetBlock() != nil {
			return status.Error(codes.InvalidArgument, "raw block volumes are not supported: volumes are directories")
		}
		if c.GetMount() == nil {
			return status.Error(codes.InvalidArgument, "access type mount is required")
		}
	}
	return nil
}

// size picks the capacity for a range: the required bytes, else the limit,
// else 1 GiB, refused beyond --maxvolumesize.
func (d *driver) size(r *csi.CapacityRange) (int64, error) {
	size := r.GetRequiredBytes()
	if size == 0 {
		size = r.GetLimitBytes()
	}
	if size == 0 {
		size = 1 << 30
	}
	if limit := r.GetLimitBytes(); limit > 0 && size > limit {
		return 0, status.Errorf(codes.OutOfRange, "required %d bytes exceed the limit of %d bytes", size, limit)
	}
	if size > d.max {
		return 0, status.Errorf(codes.OutOfRange, "requested capacity %d exceeds maximum allowed %d", size, d.max)
	}
	return size, nil
}

func (d *driver) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	if req.GetVolumeContentSource() != nil {
		return nil, status.Error(codes.InvalidArgument, "volume content sources (snapshots, clones) are not supported")
	}
	size, err := d.size(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.volumes[req.GetName()]
	if ok && v.Capacity != size {
		return nil, status.Errorf(codes.AlreadyExists, "volume %s exists with %d bytes, not %d", req.GetName(), v.Capacity, size)
	}
	if !ok {
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		v = &volume{ID: hex.EncodeToString(id), Name: req.GetName(), Capacity: size, Parameters: req.GetParameters()}
		if err := os.MkdirAll(d.dir(v.ID), 0o777); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		if err := d.save(v); err != nil {
			os.RemoveAll(d.dir(v.ID))
			return nil, status.Error(codes.Internal, err.Error())
		}
		d.volumes[v.Name] = v
	}
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId:      v.ID,
		CapacityBytes: v.Capacity,
		VolumeContext: map[string]string{"kind": "directory", "node": d.nodeID},
	}}, nil
}

func (d *driver) DeleteVolume(_ context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID is required")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// Deleting what is gone succeeds: the call is idempotent.
	if err := os.RemoveAll(d.dir(req.GetVolumeId())); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if err := os.Remove(d.record(req.GetVolumeId())); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if v := d.byID(req.GetVolumeId()); v != nil {
		delete(d.volumes, v.Name)
	}
	return &csi.DeleteVolumeResponse{}, nil
}

func (d *driver) ControllerExpandVolume(_ context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	size, err := d.size(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v := d.byID(req.GetVolumeId())
	if v == nil {
		return nil, status.Errorf(codes.NotFound, "volume %s not found", req.GetVolumeId())
	}
	if size > v.Capacity {
		grown := *v
		grown.Capacity = size
		if err := d.save(&grown); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		*v = grown
	}
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: v.Capacity, NodeExpansionRequired: false}, nil
}

func (d *driver) ValidateVolumeCapabilities(_ context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	d.mu.Lock()
	found := d.byID(req.GetVolumeId()) != nil
	d.mu.Unlock()
	if !found {
		return nil, status.Errorf(codes.NotFound, "volume %s not found", req.GetVolumeId())
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: status.Convert(err).Message()}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeCapabilities: req.GetVolumeCapabilities(),
	}}, nil
}
