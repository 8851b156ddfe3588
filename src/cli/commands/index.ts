// Owns the list of CLI commands. A new command is one file under commands/<noun>/<verb>.ts plus
// one line here.
import type { CommandClass } from "clipanion";
import type { PyroContext } from "../context.js";
import { DoctorCommand } from "./doctor.js";
import { EnvInspectCommand } from "./env/inspect.js";
import { EnvListCommand } from "./env/list.js";
import { EnvPruneCommand } from "./env/prune.js";
import { EnvPullCommand } from "./env/pull.js";
import { ExplainCommand } from "./explain.js";
import { HelpCommand } from "./help.js";
import { HostConnectCommand } from "./host/connect.js";
import { HostDoctorCommand } from "./host/doctor.js";
import { HostPrintConfigCommand } from "./host/print-config.js";
import { McpServeCommand } from "./mcp/serve.js";
import { PrepareCommand } from "./prepare.js";
import { RunCommand } from "./run.js";
import { VersionCommand } from "./version.js";
import { WorkspaceCreateCommand } from "./workspace/create.js";
import { WorkspaceDeleteCommand } from "./workspace/delete.js";
import { WorkspaceDiffCommand } from "./workspace/diff.js";
import { DiskExportCommand } from "./workspace/disk/export.js";
import { DiskListCommand } from "./workspace/disk/list.js";
import { DiskReadCommand } from "./workspace/disk/read.js";
import { WorkspaceExecCommand } from "./workspace/exec.js";
import { WorkspaceExportCommand } from "./workspace/export.js";
import { WorkspaceFileListCommand } from "./workspace/file/list.js";
import { WorkspaceFileReadCommand } from "./workspace/file/read.js";
import { WorkspaceFileWriteCommand } from "./workspace/file/write.js";
import { WorkspaceListCommand } from "./workspace/list.js";
import { WorkspaceLogsCommand } from "./workspace/logs.js";
import { WorkspacePatchApplyCommand } from "./workspace/patch/apply.js";
import { WorkspacePolicyCheckCommand } from "./workspace/policy-check.js";
import { WorkspaceResetCommand } from "./workspace/reset.js";
import { ServiceListCommand } from "./workspace/service/list.js";
import { ServiceLogsCommand } from "./workspace/service/logs.js";
import { ServiceStartCommand } from "./workspace/service/start.js";
import { ServiceStatusCommand } from "./workspace/service/status.js";
import { ServiceStopCommand } from "./workspace/service/stop.js";
import { ShellCloseCommand } from "./workspace/shell/close.js";
import { ShellOpenCommand } from "./workspace/shell/open.js";
import { ShellReadCommand } from "./workspace/shell/read.js";
import { ShellSignalCommand } from "./workspace/shell/signal.js";
import { ShellWriteCommand } from "./workspace/shell/write.js";
import { SnapshotCreateCommand } from "./workspace/snapshot/create.js";
import { SnapshotDeleteCommand } from "./workspace/snapshot/delete.js";
import { SnapshotListCommand } from "./workspace/snapshot/list.js";
import { WorkspaceStartCommand } from "./workspace/start.js";
import { WorkspaceStatusCommand } from "./workspace/status.js";
import { WorkspaceStopCommand } from "./workspace/stop.js";
import { WorkspaceSummaryCommand } from "./workspace/summary.js";
import { WorkspaceSyncPushCommand } from "./workspace/sync/push.js";
import { WorkspaceUpdateCommand } from "./workspace/update.js";

export const COMMANDS: readonly CommandClass<PyroContext>[] = [
  HelpCommand,
  VersionCommand,
  ExplainCommand,
  RunCommand,
  PrepareCommand,
  WorkspaceCreateCommand,
  WorkspaceListCommand,
  WorkspaceStatusCommand,
  WorkspaceUpdateCommand,
  WorkspacePolicyCheckCommand,
  WorkspaceExecCommand,
  WorkspaceSyncPushCommand,
  WorkspaceFileListCommand,
  WorkspaceFileReadCommand,
  WorkspaceFileWriteCommand,
  WorkspacePatchApplyCommand,
  WorkspaceDiffCommand,
  WorkspaceExportCommand,
  WorkspaceResetCommand,
  WorkspaceLogsCommand,
  WorkspaceSummaryCommand,
  WorkspaceStopCommand,
  WorkspaceStartCommand,
  WorkspaceDeleteCommand,
  SnapshotCreateCommand,
  SnapshotListCommand,
  SnapshotDeleteCommand,
  DiskExportCommand,
  DiskListCommand,
  DiskReadCommand,
  ShellOpenCommand,
  ShellReadCommand,
  ShellWriteCommand,
  ShellSignalCommand,
  ShellCloseCommand,
  ServiceStartCommand,
  ServiceListCommand,
  ServiceStatusCommand,
  ServiceLogsCommand,
  ServiceStopCommand,
  EnvListCommand,
  EnvPullCommand,
  EnvInspectCommand,
  EnvPruneCommand,
  DoctorCommand,
  McpServeCommand,
  HostPrintConfigCommand,
  HostConnectCommand,
  HostDoctorCommand,
];
