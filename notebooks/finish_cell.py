# @title おわり: 結果を Drive に書き終える
# @markdown Colab では、まだ Drive に届いていない書き込みを済ませて Drive を切り離し、このランタイムを閉じてよいことを表示します。ローカルの Jupyter では何もしません。
from helpers import colab

colab.finish()
