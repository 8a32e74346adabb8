using RawInfer.Protocol;

namespace RawInfer.Server;

// Admin-only frames (detailed STATS, ADMIN) and STATS: the role check, the audited refusal, the admin operations.
internal sealed partial class Connection
{
    private void SendStats(uint requestId, bool detailed)
    {
        var principal = _principal!;
        if (detailed && !principal.IsAdmin)
        {
            _ = ForbidAsync(requestId, AdminActions.DetailedStats, "detailed STATS needs an admin key");
            return;
        }

        var s = _server.Engine.GetStats();
        var stats = new StatsFrame
        {
            RunningRequests = s.RunningRequests, WaitingRequests = s.WaitingRequests, KvBlocksUsed = s.KvBlocksUsed,
            KvBlocksTotal = s.KvBlocksTotal, RequestsFinished = s.RequestsFinished, PromptTokens = s.PromptTokens,
            GeneratedTokens = s.GeneratedTokens, Uptime = s.Uptime, Connections = _server.ConnectionCount, ConnectionInFlight = InFlight,
            Preemptions = detailed ? s.Preemptions : 0, PrefixCacheHitRate = detailed ? s.PrefixCacheHitRate : 0,
            EngineSteps = detailed ? s.Steps : 0, ServerInFlight = detailed ? _server.InFlightRequests : 0,
        };
        Enqueue(requestId, stats with { Suspensions = VisibleSuspensions(principal.KeyId, detailed, FrameWriter.Measure(stats)) });
    }

    /// <summary>
    /// Detailed (admin): every suspension in force; otherwise only the asking key's own. Cut to what fits in one frame
    /// after <paramref name="usedBytes"/> (thousands of suspended keys would be an attack in itself).
    /// </summary>
    private List<SuspensionEntry> VisibleSuspensions(string keyId, bool detailed, int usedBytes)
    {
        var visible = new List<SuspensionEntry>();
        var room = _options.MaxFrameBytes - (usedBytes - ProtocolConstants.HeaderSize);
        foreach (var suspension in _options.Admin.ActiveSuspensions())
        {
            if (!detailed && !string.Equals(suspension.KeyId, keyId, StringComparison.Ordinal))
            {
                continue;
            }

            if (suspension.WireBytes > room)
            {
                break;
            }

            room -= suspension.WireBytes;
            visible.Add(suspension);
        }

        return visible;
    }

    /// <summary>
    /// ADMIN: a client key gets FORBIDDEN (audited); an admin key's operation runs off the reader loop (it may read
    /// the audit log from disk) and is answered with ADMIN_RESULT once its own audit record is on disk.
    /// </summary>
    private async Task AdminAsync(uint requestId, AdminFrame request)
    {
        var principal = _principal!;
        var action = AdminActions.Name(request.Operation);
        if (!principal.IsAdmin)
        {
            await ForbidAsync(requestId, action, $"ADMIN {action} needs an admin key").ConfigureAwait(false);
            return;
        }

        FramePayload reply;
        try
        {
            await Task.Yield(); // off the reader loop
            reply = await _options.Admin.ExecuteAsync(Id, principal, request, _options.MaxFrameBytes, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Nothing that claims success goes out without its record; the request may be retried.
            ServerLog.AdminFailed(Logger, Id, action, e);
            reply = new ErrorFrame(ErrorCode.Internal, $"ADMIN {action} failed: {e.Message}");
        }

        Enqueue(requestId, reply);
    }

    /// <summary>An admin-only frame from a client key: FORBIDDEN, once the refusal's audit record is on disk.</summary>
    private async Task ForbidAsync(uint requestId, string action, string message)
    {
        try
        {
            await _options.Audit.RecordAdminAsync(Id, _principal!, action, allowed: false, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            ServerLog.AuditFailed(Logger, Id, action, e); // refused either way
        }

        Enqueue(requestId, new ErrorFrame(ErrorCode.Forbidden, message));
    }
}
