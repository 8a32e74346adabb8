using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Spectre.Console;

namespace RawInfer.Cli.Download;

/// <summary>
/// Fetches a file over HTTP into FILE.partial, resuming a previous partial download with a Range request, checks
/// its SHA-256 and only then renames it to FILE. A file with the wrong hash is deleted, never kept.
/// </summary>
internal sealed class ModelDownloader
{
    /// <summary>Give up when the server sends nothing for this long.</summary>
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(60);

    private readonly HttpClient _http;

    public ModelDownloader(HttpClient http) => _http = http;

    /// <summary>Downloads <paramref name="url"/> to <paramref name="destination"/>, reporting into <paramref name="progress"/>.</summary>
    /// <exception cref="CliException">Network failure, HTTP error, interrupted transfer or hash mismatch.</exception>
    public async Task DownloadAsync(Uri url, string destination, string expectedSha256, ProgressTask progress, CancellationToken ct)
    {
        string partial = destination + ".partial";
        long existing = File.Exists(partial) ? new FileInfo(partial).Length : 0;

        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (existing > 0)
        {
            request.Headers.Range = new RangeHeaderValue(existing, null);
        }

        using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
        idle.CancelAfter(IdleTimeout);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, idle.Token).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new CliException(
                $"cannot reach {url}: {e.Message} (check the network, or set {CliContext.BaseUrlVariable} / --base-url to a reachable mirror)", e);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new CliException($"no response from {url} within {IdleTimeout.TotalSeconds:0} s", e);
        }

        using (response)
        {
            bool append = response.StatusCode == HttpStatusCode.PartialContent
                && response.Content.Headers.ContentRange?.From == existing;
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && existing > 0)
            {
                // The partial file already holds everything the server has; the hash check decides.
                progress.MaxValue = progress.Value = existing;
            }
            else if (response.IsSuccessStatusCode)
            {
                long start = append ? existing : 0;
                long? length = response.Content.Headers.ContentLength;
                progress.MaxValue = length is { } l ? start + l : Math.Max(start, 1);
                progress.Value = start;
                await CopyBodyAsync(response, partial, append, progress, idle, ct).ConfigureAwait(false);
            }
            else
            {
                throw new CliException(
                    $"GET {url} returned {(int)response.StatusCode} {response.ReasonPhrase}");
            }
        }

        string actual = await Sha256HexAsync(partial, ct).ConfigureAwait(false);
        if (!string.Equals(actual, expectedSha256, StringComparison.OrdinalIgnoreCase))
        {
            File.Delete(partial);
            throw new CliException(
                $"{Path.GetFileName(destination)} from {url} has SHA-256 {actual}, expected {expectedSha256}; the download was deleted");
        }

        File.Move(partial, destination, overwrite: true);
        progress.Value = progress.MaxValue;
    }

    /// <summary>Lower-case hex SHA-256 of a file.</summary>
    public static async Task<string> Sha256HexAsync(string path, CancellationToken ct)
    {
        var stream = File.OpenRead(path);
        await using (stream.ConfigureAwait(false))
        {
            byte[] hash = await SHA256.HashDataAsync(stream, ct).ConfigureAwait(false);
            return Convert.ToHexStringLower(hash);
        }
    }

    private static async Task CopyBodyAsync(
        HttpResponseMessage response, string partial, bool append, ProgressTask progress, CancellationTokenSource idle, CancellationToken ct)
    {
        long received = 0;
        var file = new FileStream(partial, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None);
        await using (file.ConfigureAwait(false))
        {
            try
            {
                var body = await response.Content.ReadAsStreamAsync(idle.Token).ConfigureAwait(false);
                await using (body.ConfigureAwait(false))
                {
                    var buffer = new byte[81920];
                    int read;
                    while ((read = await body.ReadAsync(buffer, idle.Token).ConfigureAwait(false)) > 0)
                    {
                        idle.CancelAfter(IdleTimeout); // restart the idle timer: data is flowing
                        await file.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
                        received += read;
                        progress.Increment(read);
                    }
                }
            }
            catch (Exception e) when (e is IOException or HttpRequestException
                || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
                // What arrived stays in the .partial file; the next pull resumes from there.
                throw new CliException(string.Create(CultureInfo.InvariantCulture,
                    $"download of {Path.GetFileName(partial)} interrupted after {received:N0} more bytes ({e.Message}); run the command again to resume"), e);
            }
        }

        if (response.Content.Headers.ContentLength is { } expected && received != expected)
        {
            throw new CliException(string.Create(CultureInfo.InvariantCulture,
                $"download of {Path.GetFileName(partial)} ended after {received:N0} of {expected:N0} bytes; run the command again to resume"));
        }
    }
}
