using RawInfer.Models;

namespace RawInfer.Cpu.Tests;

/// <summary>
/// A deliberately naive forward pass (plain loops, double accumulation, its own K/V lists, RoPE computed per
/// element with Math.Pow) to check <see cref="CpuTransformer"/> against. Follows llama2.c's run.c step by step.
/// </summary>
internal sealed class ReferenceTransformer
{
    private readonly ModelConfig _c;
    private readonly LlamaWeights _w;
    private readonly List<float[]>[] _keys;   // per layer, per position: (kvDim)
    private readonly List<float[]>[] _values; // per layer, per position: (kvDim)

    public ReferenceTransformer(LoadedModel model)
    {
        _c = model.Config;
        _w = model.Weights;
        _keys = new List<float[]>[_c.NumLayers];
        _values = new List<float[]>[_c.NumLayers];
        for (var l = 0; l < _c.NumLayers; l++)
        {
            _keys[l] = new List<float[]>();
            _values[l] = new List<float[]>();
        }
    }

    public float[] Forward(int token, int position)
    {
        int dim = _c.Dim, hd = _c.HeadDim, kvDim = _c.KvDim;
        var x = _w.TokenEmbedding.AsF32().Slice(token * dim, dim).ToArray();
        for (var l = 0; l < _c.NumLayers; l++)
        {
            var layer = _w.Layers[l];
            var xb = Norm(x, layer.AttentionNorm);
            var q = MatVec(layer.Wq, xb);
            var k = MatVec(layer.Wk, xb);
            var v = MatVec(layer.Wv, xb);
            for (var i = 0; i < dim; i += 2)
            {
                var freq = 1.0 / Math.Pow(_c.RopeTheta, (i % hd) / (double)hd);
                var angle = position * freq;
                Rotate(q, i, angle);
                if (i < kvDim)
                {
                    Rotate(k, i, angle);
                }
            }

            Assert.Equal(position, _keys[l].Count);
            _keys[l].Add(k);
            _values[l].Add(v);

            var attended = new float[dim];
            for (var h = 0; h < _c.NumHeads; h++)
            {
                var kvHead = h / (_c.NumHeads / _c.NumKvHeads);
                var scores = new double[position + 1];
                for (var t = 0; t <= position; t++)
                {
                    double s = 0;
                    for (var i = 0; i < hd; i++)
                    {
                        s += (double)q[(h * hd) + i] * _keys[l][t][(kvHead * hd) + i];
                    }

                    scores[t] = s / Math.Sqrt(hd);
                }

                var max = scores.Max();
                var sum = scores.Sum(s => Math.Exp(s - max));
                for (var i = 0; i < hd; i++)
                {
                    double acc = 0;
                    for (var t = 0; t <= position; t++)
                    {
                        acc += Math.Exp(scores[t] - max) / sum * _values[l][t][(kvHead * hd) + i];
                    }

                    attended[(h * hd) + i] = (float)acc;
                }
            }

            var o = MatVec(layer.Wo, attended);
            for (var i = 0; i < dim; i++)
            {
                x[i] += o[i];
            }

            xb = Norm(x, layer.FfnNorm);
            var gate = MatVec(layer.W1, xb);
            var up = MatVec(layer.W3, xb);
            for (var i = 0; i < gate.Length; i++)
            {
                double g = gate[i];
                gate[i] = (float)(g / (1 + Math.Exp(-g)) * up[i]);
            }

            var down = MatVec(layer.W2, gate);
            for (var i = 0; i < dim; i++)
            {
                x[i] += down[i];
            }
        }

        return MatVec(_w.Classifier, Norm(x, _w.FinalNorm));
    }

    private static void Rotate(float[] v, int i, double angle)
    {
        double v0 = v[i], v1 = v[i + 1];
        v[i] = (float)((v0 * Math.Cos(angle)) - (v1 * Math.Sin(angle)));
        v[i + 1] = (float)((v0 * Math.Sin(angle)) + (v1 * Math.Cos(angle)));
    }

    private float[] Norm(float[] x, WeightTensor weight)
    {
        var w = weight.AsF32();
        var ss = x.Sum(v => (double)v * v);
        var scale = 1.0 / Math.Sqrt((ss / x.Length) + _c.NormEpsilon);
        var o = new float[x.Length];
        for (var i = 0; i < x.Length; i++)
        {
            o[i] = (float)(w[i] * x[i] * scale);
        }

        return o;
    }

    private static float[] MatVec(WeightTensor weight, float[] x)
    {
        var w = weight.AsF32();
        var y = new float[weight.Rows];
        for (var r = 0; r < weight.Rows; r++)
        {
            double acc = 0;
            for (var c = 0; c < weight.Cols; c++)
            {
                acc += (double)w[(r * weight.Cols) + c] * x[c];
            }

            y[r] = (float)acc;
        }

        return y;
    }
}
