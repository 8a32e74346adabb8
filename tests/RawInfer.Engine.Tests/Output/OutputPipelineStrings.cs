using RawInfer.Engine.Output;

namespace RawInfer.Engine.Tests.Output;

/// <summary>String forms of the pipeline's calls: what one push or the final flush released.</summary>
internal static class OutputPipelineStrings
{
    public static string Push(this OutputPipeline pipeline, int tokenId)
    {
        pipeline.Feed(tokenId);
        return Take(pipeline);
    }

    public static string Finish(this OutputPipeline pipeline)
    {
        pipeline.Flush();
        return Take(pipeline);
    }

    private static string Take(OutputPipeline pipeline)
    {
        var text = new string(pipeline.Released);
        pipeline.ClearReleased();
        return text;
    }
}
