using System.Net;
using RawInfer.Protocol;
using RawInfer.Safety.Access;

namespace RawInfer.Server;

/// <summary>
/// The audit hooks of the request path that need the server's help: the durability barrier before a request's final
/// frame, admin-frame decisions, and the per-address wait at accept. Implemented by
/// <see cref="Safety.ServerSafety"/>; the default does nothing. Must be thread-safe.
/// </summary>
public interface IRequestAudit
{
    /// <summary>
    /// Completes once every audit record of the request (its admission decision and, when the engine ran it, its
    /// terminal record) is on disk. The server awaits it before the request's DONE or ERROR; throws
    /// <see cref="IOException"/> when a record could not be written.
    /// </summary>
    Task WaitDurableAsync(string requestId, CancellationToken cancellationToken);

    /// <summary>
    /// Records a request the server itself refused before admission (bad request, in-flight limit, draining), so that
    /// its final frame, like every other, follows its record; the server then awaits <see cref="WaitDurableAsync"/>.
    /// </summary>
    void RecordRefusal(long connectionId, Principal principal, string requestId, ErrorCode code, string reason);

    /// <summary>The request's final frame is out, or it will never get one: drop its bookkeeping.</summary>
    void Release(string requestId);

    /// <summary>
    /// Records a decision on an admin-only frame (<paramref name="allowed"/> false: a client key was refused with
    /// FORBIDDEN); completes when the record is on disk.
    /// </summary>
    Task RecordAdminAsync(long connectionId, Principal principal, string action, bool allowed, CancellationToken cancellationToken);

    /// <summary>How long a new connection from <paramref name="remote"/> must wait before it is served (zero when none).</summary>
    TimeSpan ConnectionDelay(EndPoint? remote);
}

/// <summary>The default: no records, no waits.</summary>
public sealed class NullRequestAudit : IRequestAudit
{
    public static NullRequestAudit Instance { get; } = new();

    public Task WaitDurableAsync(string requestId, CancellationToken cancellationToken) => Task.CompletedTask;

    public void RecordRefusal(long connectionId, Principal principal, string requestId, ErrorCode code, string reason)
    {
    }

    public void Release(string requestId)
    {
    }

    public Task RecordAdminAsync(long connectionId, Principal principal, string action, bool allowed, CancellationToken cancellationToken) =>
        Task.CompletedTask;

    public TimeSpan ConnectionDelay(EndPoint? remote) => TimeSpan.Zero;
}
