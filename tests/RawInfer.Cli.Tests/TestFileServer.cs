using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace RawInfer.Cli.Tests;

/// <summary>
/// A minimal HTTP/1.1 file server on 127.0.0.1 for download tests: GET with optional "Range: bytes=N-", one request
/// per connection, and a one-shot option to cut a response after some body bytes (to test resume).
/// </summary>
internal sealed class TestFileServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;

    public TestFileServer()
    {
        _listener.Start();
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Folder URL the files are served under.</summary>
    public Uri BaseUrl => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/stories260K/");

    /// <summary>File name → content.</summary>
    public ConcurrentDictionary<string, byte[]> Files { get; } = new(StringComparer.Ordinal);

    /// <summary>File name → body bytes to send before dropping the connection; applies to the next request only.</summary>
    public ConcurrentDictionary<string, int> CutNextResponseAfter { get; } = new(StringComparer.Ordinal);

    /// <summary>Every request as (file name, Range header or null).</summary>
    public ConcurrentQueue<(string File, string? Range)> Requests { get; } = new();

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try
        {
            _acceptLoop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // the loop ends with the listener's ObjectDisposed/Socket exception
        }

        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            var stream = client.GetStream();
            var (path, range) = await ReadRequestAsync(stream);
            string name = path[(path.LastIndexOf('/') + 1)..];
            Requests.Enqueue((name, range));
            if (!path.StartsWith("/stories260K/", StringComparison.Ordinal) || !Files.TryGetValue(name, out var content))
            {
                await WriteHeadAsync(stream, "404 Not Found", 0, null);
                return;
            }

            long start = 0;
            if (range is not null)
            {
                start = long.Parse(range["bytes=".Length..].TrimEnd('-'), CultureInfo.InvariantCulture);
                if (start >= content.Length)
                {
                    await WriteHeadAsync(stream, "416 Range Not Satisfiable", 0, $"Content-Range: bytes */{content.Length}");
                    return;
                }
            }

            long length = content.Length - start;
            await WriteHeadAsync(stream, range is null ? "200 OK" : "206 Partial Content", length,
                range is null ? null : $"Content-Range: bytes {start}-{content.Length - 1}/{content.Length}");
            int toSend = CutNextResponseAfter.TryRemove(name, out int cut) ? (int)Math.Min(cut, length) : (int)length;
            await stream.WriteAsync(content.AsMemory((int)start, toSend));
            await stream.FlushAsync();
        }
    }

    private static async Task<(string Path, string? Range)> ReadRequestAsync(NetworkStream stream)
    {
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && await stream.ReadAsync(one) == 1)
        {
            head.Append((char)one[0]);
        }

        var lines = head.ToString().Split("\r\n");
        string path = lines[0].Split(' ')[1];
        string? range = lines.FirstOrDefault(l => l.StartsWith("Range:", StringComparison.OrdinalIgnoreCase))?["Range:".Length..].Trim();
        return (path, range);
    }

    private static async Task WriteHeadAsync(NetworkStream stream, string status, long contentLength, string? extraHeader)
    {
        var head = $"HTTP/1.1 {status}\r\nContent-Length: {contentLength}\r\nConnection: close\r\n"
            + (extraHeader is null ? "" : extraHeader + "\r\n") + "\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
    }
}
