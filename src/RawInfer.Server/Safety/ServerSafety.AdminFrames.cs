using System.Globalization;
using System.Text;
using RawInfer.Protocol;
using RawInfer.Safety.Access;
using RawInfer.Safety.Audit;
using RawInfer.Safety.Limits;

namespace RawInfer.Server.Safety;

// ADMIN frames: each operation runs through the audited admin methods (ServerSafety.Admin.cs), and its result is
// returned only once the action's own record is on disk, like every other final frame.
public sealed partial class ServerSafety : IAdminOperations
{
    /// <summary>Records an audit query returns when the ADMIN frame asks for none in particular.</summary>
    public const int DefaultAuditQueryRecords = 1000;

    /// <summary>Most records one audit query returns over the wire.</summary>
    public const int MaxAuditQueryRecords = 100_000;

    /// <summary>Longest details text of one record in an ADMIN_RESULT, in characters.</summary>
    public const int MaxFieldsTextChars = 512;

    /// <inheritdoc/>
    public async Task<AdminResultFrame> ExecuteAsync(
        long connectionId, Principal admin, AdminFrame request, int maxPayloadBytes, CancellationToken cancellationToken)
    {
        RequireAdmin(admin);
        ArgumentNullException.ThrowIfNull(request);
        long sequence;
        AdminResultFrame result;
        switch (request.Operation)
        {
            case AdminOperation.AuditQuery:
                // the wire carries whole µs: "until" covers its whole microsecond (records keep 100 ns ticks)
                var query = new AuditQuery(request.KeyId, request.RequestId, request.Since, request.Until?.AddTicks(9));
                var limit = request.MaxRecords == 0 ? DefaultAuditQueryRecords : Math.Min(request.MaxRecords, MaxAuditQueryRecords);
                var matches = QueryAuditCore(admin, query, connectionId, out sequence);
                result = ToResult(matches, limit, maxPayloadBytes);
                break;
            case AdminOperation.ReloadKeys:
                var keys = ReloadKeysCore(admin, connectionId, out sequence);
                result = new AdminResultFrame
                {
                    Operation = request.Operation, Succeeded = keys.Succeeded, Message = keys.Error ?? "", Count = keys.KeyCount,
                };
                break;
            case AdminOperation.ReloadDenyList:
                var deny = ReloadDenyListCore(admin, connectionId, out sequence);
                result = new AdminResultFrame
                {
                    Operation = request.Operation, Succeeded = deny.Succeeded, Message = deny.Error ?? "", Count = deny.PatternCount,
                };
                break;
            case AdminOperation.LiftSuspension:
                ArgumentException.ThrowIfNullOrEmpty(request.KeyId, nameof(request));
                result = new AdminResultFrame
                {
                    Operation = request.Operation, Lifted = LiftSuspensionCore(admin, request.KeyId, connectionId, out sequence),
                };
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(request), request.Operation, "unknown admin operation");
        }

        if (sequence == long.MaxValue)
        {
            throw new IOException($"the audit record of admin action {AdminActions.Name(request.Operation)} could not be queued");
        }

        await Log.WaitDurableAsync(sequence, cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <inheritdoc/>
    IReadOnlyList<SuspensionEntry> IAdminOperations.ActiveSuspensions()
    {
        var active = Abuse.ActiveSuspensions();
        var entries = new SuspensionEntry[active.Count];
        for (var i = 0; i < active.Count; i++)
        {
            entries[i] = new SuspensionEntry(active[i].KeyId, active[i].Until, Reason(active[i]));
        }

        return entries;
    }

    /// <summary>Why a key is suspended: its signal counts, e.g. "PolicyDenial=3".</summary>
    internal static string Reason(Suspension suspension)
    {
        var text = new StringBuilder();
        foreach (var (signal, count) in suspension.Signals.OrderBy(s => s.Key))
        {
            text.Append(text.Length == 0 ? "" : ",").Append(signal).Append('=').Append(count.ToString(CultureInfo.InvariantCulture));
        }

        return text.ToString();
    }

    /// <summary>
    /// The newest <paramref name="limit"/> matches that fit in <paramref name="maxPayloadBytes"/>, oldest first;
    /// truncated when any match was left out.
    /// </summary>
    internal static AdminResultFrame ToResult(IReadOnlyList<AuditRecord> matches, int limit, int maxPayloadBytes)
    {
        var result = new AdminResultFrame { Operation = AdminOperation.AuditQuery, MatchedRecords = matches.Count };
        var room = maxPayloadBytes - result.MeasureWithoutRecords();
        var kept = new List<AuditRecordEntry>(Math.Min(limit, matches.Count));
        for (var i = matches.Count - 1; i >= 0 && kept.Count < limit; i--)
        {
            var entry = ToEntry(matches[i]);
            if (entry.WireBytes > room)
            {
                break;
            }

            room -= entry.WireBytes;
            kept.Add(entry);
        }

        kept.Reverse();
        return result with { Records = kept, Truncated = kept.Count < matches.Count };
    }

    private static AuditRecordEntry ToEntry(AuditRecord record)
    {
        var fields = new StringBuilder();
        foreach (var (name, value) in record.Event.FieldList)
        {
            fields.Append(fields.Length == 0 ? "" : "; ").Append(name).Append('=').Append(value);
            if (fields.Length > MaxFieldsTextChars)
            {
                break;
            }
        }

        var text = fields.ToString();
        if (text.Length > MaxFieldsTextChars)
        {
            // never cut a surrogate pair in half: the wire carries valid UTF-8 only
            var cut = MaxFieldsTextChars - 1;
            cut -= char.IsHighSurrogate(text[cut - 1]) ? 1 : 0;
            text = string.Concat(text.AsSpan(0, cut), "…");
        }

        return new AuditRecordEntry(record.Sequence, record.Timestamp, record.Type.ToString(), record.KeyId, record.ClientAddress, record.RequestId, text);
    }
}
