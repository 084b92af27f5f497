set terminal svg size 1100,480 font 'sans,11'
set output 'speedup.svg'
set multiplot layout 1,2
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left title 'workers'
set grid ytics
set xtics rotate by -30
set title 'speedup over the single-core loop'
set logscale y
set yrange [*:*]
plot 'speedup.dat' using 2:xtic(1) title '1', 'speedup.dat' using 3:xtic(1) title '2'
set title 'cost per operation (ns)'
unset logscale y
set yrange [0:*]
plot 'costs.dat' using 2:xtic(1) title '1', 'costs.dat' using 3:xtic(1) title '2'
unset multiplot
set terminal pngcairo size 1100,480 font 'sans,10'
set output 'speedup.png'
set multiplot layout 1,2
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left title 'workers'
set grid ytics
set xtics rotate by -30
set title 'speedup over the single-core loop'
set logscale y
set yrange [*:*]
plot 'speedup.dat' using 2:xtic(1) title '1', 'speedup.dat' using 3:xtic(1) title '2'
set title 'cost per operation (ns)'
unset logscale y
set yrange [0:*]
plot 'costs.dat' using 2:xtic(1) title '1', 'costs.dat' using 3:xtic(1) title '2'
unset multiplot
